// The server API's pure parts: its keys (parsing, lookup, each key's rate)
// and the rules of its request bodies.
#include <gtest/gtest.h>

#include <string>

#include "json.h"
#include "server_keys.h"
#include "server_requests.h"

namespace aurora::chat {
namespace {

const std::string kA(40, 'a'), kB(40, 'b');

std::string keys_json(const std::string &entries) { return "{\"keys\":[" + entries + "]}"; }

TEST(ServerKeys, FindsEachKeyAndNothingElse) {
    std::string err;
    auto keys = ServerKeys::parse(keys_json("{\"name\":\"a\",\"key\":\"" + kA + "\",\"scopes\":[\"read\"]},"
                                            "{\"name\":\"b\",\"key\":\"" + kB + "\",\"scopes\":[\"publish\",\"moderate\"],\"rate_per_s\":5}"),
                                  "test", err);
    ASSERT_TRUE(keys) << err;
    ASSERT_NE(keys->find(kA), nullptr);
    EXPECT_EQ(keys->find(kA)->name, "a");
    EXPECT_EQ(keys->find(kA)->scopes, kScopeRead);
    EXPECT_EQ(keys->find(kB)->scopes, kScopePublish | kScopeModerate);
    for (const std::string &other : {std::string(), kA.substr(1), kA + "a", std::string(40, 'c'), kA + kB})
        EXPECT_EQ(keys->find(other), nullptr) << other;
}

TEST(ServerKeys, RefusesBadSetsWithoutQuotingAKey) {
    const std::string k = "\"key\":\"" + kA + "\"";
    for (const std::string &bad :
         {std::string("[]"), std::string("{\"keys\":[]}"), std::string("{\"keys\":{}}"), keys_json("1"),
          keys_json("{\"name\":\"a\"," + k + "}"),                                      // no scopes
          keys_json("{\"name\":\"a\"," + k + ",\"scopes\":[]}"),                        // empty scopes
          keys_json("{\"name\":\"a\"," + k + ",\"scopes\":[\"all\"]}"),                 // unknown scope
          keys_json("{\"name\":\"A\"," + k + ",\"scopes\":[\"read\"]}"),                // bad name
          keys_json("{\"name\":\"a\",\"key\":\"short\",\"scopes\":[\"read\"]}"),        // short key
          keys_json("{\"name\":\"a\",\"key\":\"" + std::string(40, ' ') + "\",\"scopes\":[\"read\"]}"),
          keys_json("{\"name\":\"a\"," + k + ",\"scopes\":[\"read\"],\"rate_per_s\":0}"),
          keys_json("{\"name\":\"a\"," + k + ",\"scopes\":[\"read\"],\"x\":1}"),        // unknown field
          keys_json("{\"name\":\"a\"," + k + ",\"scopes\":[\"read\"]},{\"name\":\"a\",\"key\":\"" + kB +
                    "\",\"scopes\":[\"read\"]}"),                                       // name twice
          keys_json("{\"name\":\"a\"," + k + ",\"scopes\":[\"read\"]},{\"name\":\"b\"," + k +
                    ",\"scopes\":[\"read\"]}"),                                         // key twice
          std::string("{\"keys\":[],\"more\":1}")}) {
        std::string err;
        EXPECT_FALSE(ServerKeys::parse(bad, "test", err)) << bad;
        EXPECT_FALSE(err.empty());
        EXPECT_EQ(err.find(kA), std::string::npos) << err;
        EXPECT_EQ(err.find(kB), std::string::npos) << err;
    }
}

TEST(ServerKeys, ARateIsABucketOneSecondDeep) {
    std::string err;
    auto keys = ServerKeys::parse(keys_json("{\"name\":\"a\",\"key\":\"" + kA + "\",\"scopes\":[\"read\"],\"rate_per_s\":4}"),
                                  "test", err);
    ASSERT_TRUE(keys);
    ServerKey &k = *keys->find(kA);
    const uint64_t t = 1'000'000'000'000;
    double retry = 0;
    for (int i = 0; i < 4; ++i) EXPECT_TRUE(ServerKeys::take(k, t, retry)) << i;  // the burst
    EXPECT_FALSE(ServerKeys::take(k, t, retry));
    EXPECT_NEAR(retry, 0.25, 1e-9);
    EXPECT_TRUE(ServerKeys::take(k, t + 250'000'000, retry));  // one more a quarter second later
    EXPECT_FALSE(ServerKeys::take(k, t + 250'000'000, retry));
    for (int i = 0; i < 4; ++i) EXPECT_TRUE(ServerKeys::take(k, t + 60'000'000'000, retry));  // refilled, not beyond
    EXPECT_FALSE(ServerKeys::take(k, t + 60'000'000'000, retry));
}

TEST(ServerKeys, ASlowRateStillAllowsOneRequest) {
    std::string err;
    auto keys = ServerKeys::parse(keys_json("{\"name\":\"a\",\"key\":\"" + kA + "\",\"scopes\":[\"read\"],\"rate_per_s\":0.5}"),
                                  "test", err);
    ASSERT_TRUE(keys);
    ServerKey &k = *keys->find(kA);
    double retry = 0;
    EXPECT_TRUE(ServerKeys::take(k, 1'000'000'000, retry));
    EXPECT_FALSE(ServerKeys::take(k, 1'000'000'000, retry));
    EXPECT_NEAR(retry, 2.0, 1e-9);
    EXPECT_TRUE(ServerKeys::take(k, 3'000'000'000, retry));
}

std::optional<PublishRequest> publish(const std::string &body, bool broadcast, Refusal &why) {
    plugin::Json j = plugin::parse_json(body);
    EXPECT_TRUE(j) << body;
    return parse_publish(j.get(), broadcast, 10, why);
}

TEST(ServerRequests, PublishTakesWhatItSaysAndNothingElse) {
    Refusal why;
    auto r = publish(R"({"room":"general","text":"hi","user_id":"u1","ref":"r1"})", false, why);
    ASSERT_TRUE(r) << why.text;
    EXPECT_EQ(r->rooms, std::vector<std::string>{"general"});
    EXPECT_EQ((std::vector<std::string>{r->text, r->user_id, r->username, r->ref}),
              (std::vector<std::string>{"hi", "u1", "u1", "r1"}));
    auto sys = publish(R"({"room":"general","text":"0123456789"})", false, why);
    ASSERT_TRUE(sys);
    EXPECT_TRUE(sys->user_id.empty() && sys->ref.empty());
    struct Case {
        const char *body, *code;
    };
    for (Case c : {Case{R"({"room":"general","text":"01234567890"})", "too_long"},
                   Case{R"({"room":"general","text":""})", "empty"},
                   Case{R"({"room":"general","text":"x","username":"n"})", "bad_field"},
                   Case{R"({"room":"general","text":"x","user_id":"anon-1"})", "bad_user"},
                   Case{R"({"room":"general","text":"x","user_id":"a\u0085b"})", "bad_user"},
                   Case{R"({"room":"general","text":"x","ref":"a\tb"})", "bad_field"},
                   Case{R"({"room":"a b","text":"x"})", "bad_room"},
                   Case{R"({"rooms":["a"],"text":"x"})", "bad_field"},
                   Case{R"({"room":"general","text":"x","extra":null})", "bad_field"}}) {
        EXPECT_FALSE(publish(c.body, false, why)) << c.body;
        EXPECT_EQ(why.code, c.code) << c.body << ": " << why.text;
    }
}

TEST(ServerRequests, BroadcastNamesEachRoomOnceAndAtMostAHundred) {
    Refusal why;
    auto r = publish(R"({"rooms":["a","b"],"text":"x"})", true, why);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->rooms, (std::vector<std::string>{"a", "b"}));
    std::string hundred = "{\"text\":\"x\",\"rooms\":[";
    for (int i = 0; i < 100; ++i) hundred += (i ? ",\"r" : "\"r") + std::to_string(i) + "\"";
    EXPECT_TRUE(publish(hundred + "]}", true, why));
    EXPECT_FALSE(publish(hundred + ",\"r100\"]}", true, why));
    for (const char *bad : {R"({"rooms":[],"text":"x"})", R"({"rooms":["a","a"],"text":"x"})",
                            R"({"rooms":"a","text":"x"})", R"({"rooms":[1],"text":"x"})", R"({"room":"a","text":"x"})"})
        EXPECT_FALSE(publish(bad, true, why)) << bad;
}

TEST(ServerRequests, TargetsAndBanDurations) {
    Refusal why;
    auto parse = [&](const std::string &body, TargetKind kind) {
        plugin::Json j = plugin::parse_json(body);
        return parse_target(j.get(), kind, why);
    };
    auto ban = parse(R"({"user_id":"u","duration_s":60,"reason":"spam"})", TargetKind::Ban);
    ASSERT_TRUE(ban);
    EXPECT_EQ(ban->duration_s, 60);
    EXPECT_EQ(ban->reason, "spam");
    EXPECT_TRUE(parse(R"({"user_id":"u","duration_s":315360000})", TargetKind::Ban));
    for (const char *bad : {R"({"user_id":"u","duration_s":315360001})", R"({"user_id":"u","duration_s":0.5})",
                            R"({"user_id":"u","duration_s":1e400})", R"({"user_id":"u"})"})
        EXPECT_FALSE(parse(bad, TargetKind::Ban)) << bad;
    EXPECT_FALSE(parse(R"({"user_id":"u","reason":"r"})", TargetKind::Unban));
    EXPECT_FALSE(parse(R"({"user_id":"u","duration_s":5})", TargetKind::Disconnect));
    EXPECT_TRUE(parse("{\"user_id\":\"u\",\"reason\":\"" + std::string(100, 'r') + "\"}", TargetKind::Disconnect));
    EXPECT_FALSE(parse("{\"user_id\":\"u\",\"reason\":\"" + std::string(101, 'r') + "\"}", TargetKind::Disconnect));
}

TEST(ServerRequests, CloseReasonsAreCutAtACharacterBoundary) {
    EXPECT_EQ(close_reason("short"), "short");
    std::string emoji;
    for (int i = 0; i < 40; ++i) emoji += "\xF0\x9F\x99\x82";  // U+1F642, 4 bytes
    std::string cut = close_reason(emoji);
    EXPECT_EQ(cut.size(), 120u);  // 30 whole characters: a 31st would need 124 bytes
    EXPECT_TRUE(plugin::valid_utf8(cut));
    EXPECT_EQ(close_reason(std::string(200, 'x')).size(), 123u);
}

}  // namespace
}  // namespace aurora::chat
