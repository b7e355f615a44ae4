// The pure pieces of the ingest plugin, in process: stream ids, the
// entry -> document mapping (and what makes an entry poison), the settings
// checks and the MongoDB URL timeouts.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "change_fold.h"
#include "content_sniff.h"
#include "consumer_slot.h"
#include "retention.h"
#include "search_tokens.h"
#include "ingest_settings.h"
#include "message_document.h"
#include "stream_entry.h"

namespace aurora::ingest {
namespace {

StreamEntry entry(std::map<std::string, std::string> fields, std::string id = "1732284000123-7") {
    StreamEntry e;
    e.id = id;
    e.sid = *StreamId::parse(id);
    e.fields = std::move(fields);
    return e;
}

TEST(StreamIdTest, ParsesAndOrders) {
    EXPECT_EQ(StreamId::parse("1732284000123-7")->seq, 7u);
    EXPECT_EQ(StreamId::parse("1732284000123")->ms, 1732284000123u);
    EXPECT_FALSE(StreamId::parse("abc-1"));
    EXPECT_FALSE(StreamId::parse("1-"));
    EXPECT_FALSE(StreamId::parse(""));
    EXPECT_LT(*StreamId::parse("999-9"), *StreamId::parse("1000-0"));  // not string order
    EXPECT_LT(*StreamId::parse("5-9"), *StreamId::parse("5-10"));
}

TEST(MessageDocumentTest, SeedSchema) {
    bson_t doc = BSON_INITIALIZER;
    auto why = build_document(entry({{"roomId", "general"}, {"userId", "65f0c0ffee0123456789abcd"},
                                     {"text", "hi"}, {"username", "alice"}, {"ref", "r1"}}),
                              &doc);
    ASSERT_FALSE(why) << *why;
    char *json = bson_as_canonical_extended_json(&doc, nullptr);
    std::string s(json);
    bson_free(json);
    bson_destroy(&doc);
    EXPECT_EQ(s,
              "{ \"roomId\" : \"general\", \"userId\" : { \"$oid\" : \"65f0c0ffee0123456789abcd\" }, "
              "\"username\" : \"alice\", \"text\" : \"hi\", \"status\" : \"sent\", \"attachments\" : [  ], "
              "\"createdAt\" : { \"$date\" : { \"$numberLong\" : \"1732284000123\" } }, "
              "\"updatedAt\" : { \"$date\" : { \"$numberLong\" : \"1732284000123\" } }, "
              "\"streamId\" : \"1732284000123-7\" }");
}

TEST(MessageDocumentTest, PoisonEntries) {
    auto poison = [](std::map<std::string, std::string> f) {
        bson_t doc = BSON_INITIALIZER;
        auto why = build_document(entry(std::move(f)), &doc);
        bson_destroy(&doc);
        return why.value_or("");
    };
    EXPECT_NE(poison({{"roomId", "general"}, {"userId", "anon-1f2e-7"}, {"text", "x"}}).find("not an ObjectId"),
              std::string::npos);
    EXPECT_NE(poison({{"roomId", "general"}, {"userId", "65f0c0ffee0123456789abcz"}, {"text", "x"}}), "");
    EXPECT_NE(poison({{"userId", "65f0c0ffee0123456789abcd"}, {"text", "x"}}), "");
    EXPECT_NE(poison({{"roomId", "general"}, {"userId", "65f0c0ffee0123456789abcd"}}), "");
    EXPECT_EQ(poison({{"roomId", "general"}, {"userId", "65f0c0ffee0123456789abcd"}, {"text", ""}}), "");
}

TEST(MessageDocumentTest, AttachmentsAsTheSeedPlannedThem) {
    const std::string id(32, 'a');
    bson_t doc = BSON_INITIALIZER;
    auto why = build_document(entry({{"roomId", "general"}, {"userId", "65f0c0ffee0123456789abcd"}, {"text", ""},
                                     {"attachments", "[{\"id\":\"" + id + "\",\"url\":\"/elsewhere\",\"fileType\":"
                                                     "\"image/png\",\"size\":73,\"filename\":\"a.png\",\"x\":1}]"}}),
                              &doc);
    ASSERT_FALSE(why) << *why;
    char *json = bson_as_relaxed_extended_json(&doc, nullptr);
    std::string s(json);
    bson_free(json);
    bson_destroy(&doc);
    // The url is always where the upload is served; unknown fields are dropped.
    EXPECT_NE(s.find("\"attachments\" : [ { \"id\" : \"" + id + "\", \"url\" : \"/api/uploads/" + id +
                     "\", \"fileType\" : \"image/png\", \"size\" : 73, \"filename\" : \"a.png\" } ]"),
              std::string::npos) << s;

    auto poison = [](const std::string &field) {
        bson_t d = BSON_INITIALIZER;
        auto w = build_document(entry({{"roomId", "r"}, {"userId", "65f0c0ffee0123456789abcd"}, {"text", "x"},
                                       {"attachments", field}}), &d);
        bson_destroy(&d);
        return w.has_value();
    };
    EXPECT_FALSE(poison(""));  // none
    EXPECT_FALSE(poison("[]"));
    for (const std::string &bad : std::vector<std::string>{"x", "{}", "[1]", "[{\"id\":\"" + std::string(32, 'A') + "\"}]",
                                  "[{\"id\":\"" + id + "\",\"fileType\":\"t\",\"filename\":\"f\",\"size\":-1}]",
                                  "[{\"id\":\"" + id + "\",\"fileType\":\"t\",\"filename\":\"f\"}]"})
        EXPECT_TRUE(poison(bad)) << bad;
    std::string eleven = "[";
    for (int i = 0; i < 11; ++i)
        eleven += std::string(i ? "," : "") + "{\"id\":\"" + id + "\",\"fileType\":\"t\",\"filename\":\"f\",\"size\":1}";
    EXPECT_TRUE(poison(eleven + "]"));
}

TEST(ContentSniffTest, TypesFromTheBytesNeverMarkup) {
    using namespace std::string_view_literals;
    EXPECT_EQ(sniff_type("\x89PNG\r\n\x1a\nrest"), "image/png");
    EXPECT_EQ(sniff_type("\xFF\xD8\xFF\xE0"), "image/jpeg");
    EXPECT_EQ(sniff_type("GIF89a..."), "image/gif");
    EXPECT_EQ(sniff_type("RIFF\x10\0\0\0WEBPVP8 abcd"sv), "image/webp");
    EXPECT_EQ(sniff_type("RIFF\x10\0\0\0WAVEfmt abcd"sv), "");
    EXPECT_EQ(sniff_type("%PDF-1.7"), "application/pdf");
    EXPECT_EQ(sniff_type("caf\xC3\xA9\n\tnotes\r\n"), "text/plain");
    EXPECT_EQ(sniff_type("a < b and <bogus> tags"), "text/plain");
    EXPECT_EQ(sniff_type("<3 and < 4"), "text/plain");
    for (const char *markup : {"<!DOCTYPE html>", "<html>", "  \n<SCRIPT>x", "\xEF\xBB\xBF<svg onload=1>",
                               "<?xml version='1.0'?>", "<!-- c -->", "<p>", "<a href=x>", "<iframe/src=x>",
                               "<htmla onload=x>", "<bogus>", "</p>"})
        EXPECT_EQ(sniff_type(markup), "text/html") << markup;
    for (std::string_view binary : {""sv, "a\0b"sv, "\xC2\x85 next line"sv, "\xFF\xFE"sv, "\x7F"sv})
        EXPECT_EQ(sniff_type(binary), "") << binary;
}

TEST(ContentSniffTest, FileNamesAndDisposition) {
    std::string err;
    EXPECT_EQ(upload_filename("photo.png", err), "photo.png");
    EXPECT_EQ(upload_filename("C:\\Users\\me\\photo.png", err), "photo.png");
    EXPECT_EQ(upload_filename("../../etc/passwd", err), "passwd");
    for (const std::string &bad : {std::string(), std::string("dir/"), std::string(".."), std::string("a\nb"),
                                  std::string("a\x07"), std::string(256, 'x'), std::string("\xFF")})
        EXPECT_EQ(upload_filename(bad, err), "") << bad;
    EXPECT_EQ(content_disposition("image/png", "red dot.png"),
              "inline; filename=\"red dot.png\"; filename*=UTF-8''red%20dot.png");
    EXPECT_EQ(content_disposition("text/plain", "r\xC3\xA9sum\xC3\xA9 \"x\";.txt"),
              "attachment; filename=\"r__sum__ _x__.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22x%22%3B.txt");
}

TEST(IngestSettingsTest, UploadSettings) {
    std::string err;
    auto s = load_settings(AURORA_STR_LIT("{}"), err);
    ASSERT_TRUE(s) << err;
    EXPECT_FALSE(s->uploads);
    EXPECT_EQ(s->upload_types.size(), 6u);
    EXPECT_EQ(s->upload_max_bytes, 10 * 1024 * 1024);
    EXPECT_FALSE(load_settings(AURORA_STR_LIT("{\"upload_types\": [\"image/svg+xml\"]}"), err));
    EXPECT_NE(err.find("upload_types"), std::string::npos);
    EXPECT_FALSE(load_settings(AURORA_STR_LIT("{\"upload_types\": [\"text/html\"]}"), err));
    EXPECT_FALSE(load_settings(AURORA_STR_LIT("{\"uploads\": true, \"history\": false}"), err));
    EXPECT_FALSE(load_settings(AURORA_STR_LIT("{\"upload_bucket\": \"a.b\"}"), err));
    EXPECT_TRUE(load_settings(AURORA_STR_LIT("{\"uploads\": true, \"upload_types\": [\"image/png\"]}"), err)) << err;
}

TEST(MessageDocumentTest, AnyUserIdIsStoredAsAString) {
    auto build = [](std::map<std::string, std::string> f, bson_t *doc) {
        return build_document(entry(std::move(f)), doc, /*any_user_id=*/true);
    };
    bson_t doc = BSON_INITIALIZER;
    EXPECT_FALSE(build({{"roomId", "general"}, {"userId", "auth0|5f7c8ec7"}, {"text", "x"}}, &doc));
    bson_iter_t it;
    ASSERT_TRUE(bson_iter_init_find(&it, &doc, "userId"));
    EXPECT_TRUE(BSON_ITER_HOLDS_UTF8(&it));
    EXPECT_STREQ(bson_iter_utf8(&it, nullptr), "auth0|5f7c8ec7");
    bson_destroy(&doc);
    bson_t doc2 = BSON_INITIALIZER;  // an ObjectId-shaped id stays an ObjectId
    EXPECT_FALSE(build({{"roomId", "general"}, {"userId", "65f0c0ffee0123456789abcd"}, {"text", "x"}}, &doc2));
    ASSERT_TRUE(bson_iter_init_find(&it, &doc2, "userId"));
    EXPECT_TRUE(BSON_ITER_HOLDS_OID(&it));
    bson_destroy(&doc2);
    bson_t doc3 = BSON_INITIALIZER;
    EXPECT_TRUE(build({{"roomId", "general"}, {"userId", std::string(129, 'u')}, {"text", "x"}}, &doc3));
    bson_destroy(&doc3);
    bson_t doc4 = BSON_INITIALIZER;  // anonymous senders are never stored
    EXPECT_TRUE(build({{"roomId", "general"}, {"userId", "anon-1f2e-7"}, {"text", "x"}}, &doc4));
    bson_destroy(&doc4);
    bson_t doc5 = BSON_INITIALIZER;  // uppercase hex stays the string it was sent as
    EXPECT_FALSE(build({{"roomId", "general"}, {"userId", "65F0C0FFEE0123456789ABCD"}, {"text", "x"}}, &doc5));
    ASSERT_TRUE(bson_iter_init_find(&it, &doc5, "userId"));
    EXPECT_TRUE(BSON_ITER_HOLDS_UTF8(&it));
    bson_destroy(&doc5);
}

TEST(IngestSettingsTest, ChecksAndDefaults) {
    std::string err;
    auto s = load_settings(AURORA_STR_LIT("{}"), err);
    ASSERT_TRUE(s) << err;
    EXPECT_EQ(s->stream, "chat:messages");
    EXPECT_EQ(s->group, "mongo_workers");
    EXPECT_EQ(s->dead_letter_stream, "chat:messages:dead");
    EXPECT_EQ(s->batch, 500);
    EXPECT_TRUE(s->secondary_indexes);
    EXPECT_EQ(s->block_ms, 5000);
    EXPECT_FALSE(load_settings(AURORA_STR_LIT("{\"batchsize\": 10}"), err));
    EXPECT_FALSE(load_settings(AURORA_STR_LIT("{\"dead_letter_stream\": \"chat:messages\"}"), err));
    EXPECT_FALSE(load_settings(AURORA_STR_LIT("{\"jwt_algorithm\": \"none\"}"), err));
    EXPECT_FALSE(load_settings(AURORA_STR_LIT("{\"history_default_limit\": 500}"), err));
    // A live consumer blocked in XREADGROUP looks idle for block_ms: never reaped.
    EXPECT_FALSE(load_settings(AURORA_STR_LIT("{\"consumer_reap_idle_ms\": 6000, \"block_ms\": 5000}"), err));
    EXPECT_NE(err.find("consumer_reap_idle_ms"), std::string::npos);
    EXPECT_EQ(s->user_ids, "objectid");
    EXPECT_FALSE(s->any_user_id);
    EXPECT_TRUE(load_settings(AURORA_STR_LIT("{\"user_ids\": \"any\"}"), err)->any_user_id);
    EXPECT_FALSE(load_settings(AURORA_STR_LIT("{\"user_ids\": \"strings\"}"), err));
    EXPECT_EQ(s->unique_key, "");  // the mode's: streamId, or roomId,streamId on a cluster
    EXPECT_TRUE(load_settings(AURORA_STR_LIT("{\"unique_key\": \"streamId\"}"), err));
    EXPECT_TRUE(load_settings(AURORA_STR_LIT("{\"unique_key\": \"roomId,streamId\"}"), err));
    EXPECT_FALSE(load_settings(AURORA_STR_LIT("{\"unique_key\": \"roomId\"}"), err));
    EXPECT_NE(err.find("unique_key"), std::string::npos);
    EXPECT_FALSE(load_settings(AURORA_STR_LIT("{\"unique_key\": \"roomId, streamId\"}"), err));
    EXPECT_TRUE(load_settings(AURORA_STR_LIT("{\"consumer_reap_idle_ms\": 0}"), err));
    EXPECT_TRUE(load_settings(AURORA_STR_LIT("{\"consumer_reap_idle_ms\": 1000, \"block_ms\": 200, \"redis_timeout_ms\": 500}"), err));
}

TEST(IngestSettingsTest, RoomRetentionEntries) {
    std::string err;
    auto s = load_settings(AURORA_STR_LIT("{\"room_retention\": [\"news=86400\", \"keep=0\"], \"retention_s\": 60}"), err);
    ASSERT_TRUE(s) << err;
    EXPECT_EQ(s->room_retention_s.at("news"), 86400);
    EXPECT_EQ(s->room_retention_s.at("keep"), 0);
    for (const char *bad : {"[\"news\"]", "[\"news=\"]", "[\"news=-1\"]", "[\"news=1d\"]", "[\"bad room=5\"]",
                            "[\"=5\"]", "[\"a=1\", \"a=2\"]", "[\"a=999999999999999\"]"}) {
        const std::string cfg = std::string("{\"room_retention\": ") + bad + "}";
        EXPECT_FALSE(load_settings(aurora_str{cfg.data(), cfg.size()}, err)) << bad;
        EXPECT_NE(err.find("room_retention"), std::string::npos) << err;
    }
}

// The stream is trimmed at the oldest entry a group still needs, or the
// keep cutoff, whichever is older; with no group, not at all.
TEST(RetentionTest, TrimsOnlyWhatEveryGroupAcknowledged) {
    const StreamId cutoff{5000, 0};
    EXPECT_FALSE(safe_trim_point({}, cutoff));
    // Everything delivered and acknowledged up to 9000-3: the cutoff decides.
    EXPECT_EQ(*safe_trim_point({{{9000, 3}, std::nullopt}}, cutoff), cutoff);
    // Delivered up to 4000-7, nothing pending: everything up to it may go.
    EXPECT_EQ(*safe_trim_point({{{4000, 7}, std::nullopt}}, cutoff), (StreamId{4000, 8}));
    // A pending entry (a worker died holding it) holds the trim back.
    EXPECT_EQ(*safe_trim_point({{{9000, 0}, StreamId{1200, 4}}}, cutoff), (StreamId{1200, 4}));
    // Several groups: the slowest one decides.
    EXPECT_EQ(*safe_trim_point({{{9000, 0}, std::nullopt}, {{3000, 0}, std::nullopt}}, cutoff), (StreamId{3000, 1}));
}

// Search words: letters and digits, ASCII folded, other scripts as
// written, punctuation and emoji between words, nothing a regex could see.
TEST(SearchTokensTest, WordsOfAMessage) {
    using V = std::vector<std::string>;
    EXPECT_EQ(search_tokens("The deploy is Friday, THE deploy!"), (V{"the", "deploy", "is", "friday"}));
    EXPECT_EQ(search_tokens("Grüße aus Köln \u2014 \U0001F600 ok"), (V{"grüße", "aus", "köln", "ok"}));
    EXPECT_EQ(search_tokens("a I x1 .* ^(a|b)+$ {\"$ne\": null}"), (V{"x1", "ne", "null"}));
    EXPECT_EQ(search_tokens("\xff\xfe" "ab\xc3"), (V{"ab"}));  // bytes that are not UTF-8 separate words
    EXPECT_EQ(search_tokens(std::string(65, 'x') + " ok"), (V{"ok"}));  // over 64 bytes: not indexed
    std::string many;
    for (int i = 0; i < 300; ++i) many += "w" + std::to_string(i) + " ";
    EXPECT_EQ(search_tokens(many).size(), kMaxMessageTokens);
    EXPECT_EQ(search_tokens(many, 3), (V{"w0", "w1", "w2"}));
}

TEST(IngestSettingsTest, MongoUrlTimeouts) {
    const std::string all =
        "serverSelectionTimeoutMS=2000&connectTimeoutMS=2000&heartbeatFrequencyMS=1000&socketTimeoutMS=9000";
    EXPECT_EQ(mongo_url_with_timeouts("mongodb://h:1/db", 2000, 9000), "mongodb://h:1/db?" + all);
    EXPECT_EQ(mongo_url_with_timeouts("mongodb://h:1", 2000, 9000), "mongodb://h:1/?" + all);
    EXPECT_EQ(mongo_url_with_timeouts("mongodb://h:1/db?serverselectiontimeoutms=50&appname=x&SOCKETTIMEOUTMS=7", 2000,
                                      9000),
              "mongodb://h:1/db?serverselectiontimeoutms=50&appname=x&SOCKETTIMEOUTMS=7&connectTimeoutMS=2000&"
              "heartbeatFrequencyMS=1000");
}

// Slots are the lowest free number; a slot given back (the process gone:
// its lock file closed) is the next one taken; scopes count apart.
TEST(ConsumerSlotTest, LowestFreeSlotAndItComesBack) {
    char tmpl[] = "/tmp/aurora-slot-XXXXXX";
    ASSERT_TRUE(mkdtemp(tmpl));
    const std::string dir = tmpl;
    std::string err;
    auto a = std::make_unique<ConsumerSlot>(dir, "redis/stream/group", err);
    ConsumerSlot b(dir, "redis/stream/group", err);
    ConsumerSlot other(dir, "another/group", err);
    EXPECT_TRUE(err.empty()) << err;
    EXPECT_EQ(a->slot(), 0);
    EXPECT_EQ(b.slot(), 1);
    EXPECT_EQ(other.slot(), 0);
    EXPECT_TRUE(a->name().ends_with("-s0")) << a->name();
    EXPECT_NE(a->name(), b.name());
    a.reset();  // the process that held slot 0 stopped
    ConsumerSlot again(dir, "redis/stream/group", err);
    EXPECT_EQ(again.slot(), 0);

    std::string bad;
    ConsumerSlot nowhere(dir + "/missing/dir", "x", bad);
    EXPECT_EQ(nowhere.slot(), -1);
    EXPECT_NE(bad.find("cannot open"), std::string::npos) << bad;
    EXPECT_TRUE(nowhere.name().ends_with("-" + std::to_string(getpid()))) << nowhere.name();
    std::filesystem::remove_all(dir);
}


// Changes fold in stream-id order, whatever order they are read in: the
// sortable key orders ids that plain text would not ("999-0" < "1000-0").
TEST(ChangeFoldTest, FoldsInIdOrderWhateverTheReadOrder) {
    auto key = [](const char *id) { return sortable_id(*StreamId::parse(id)); };
    EXPECT_LT(key("999-5"), key("1000-0"));
    EXPECT_LT(key("1000-9"), key("1000-10"));
    std::vector<ChangeRecord> changes{
        {key("1000-10"), "reaction", "bob", "", "x", "remove", 1000},
        {key("999-0"), "edit", "alice", "first", "", "", 999},
        {key("1000-0"), "reaction", "bob", "", "x", "add", 1000},
        {key("1000-2"), "reaction", "carol", "", "y", "add", 1000},
        {key("1000-1"), "edit", "alice", "second", "", "", 1000},
        {key("1000-3"), "reaction", "alice", "", "x", "add", 1000},
    };
    MessageState st = fold_changes(changes);
    EXPECT_TRUE(st.edited);
    EXPECT_EQ(st.text, "second");
    ASSERT_EQ(st.reactions.size(), 2u);
    EXPECT_EQ(st.reactions[0].emoji, "x");  // first added first, even after bob's removal
    EXPECT_EQ(st.reactions[0].users, std::vector<std::string>{"alice"});
    EXPECT_EQ(st.reactions[1].users, std::vector<std::string>{"carol"});
    EXPECT_EQ(st.last_key, key("1000-10"));
    std::reverse(changes.begin(), changes.end());
    MessageState again = fold_changes(changes);
    EXPECT_EQ(again.text, st.text);
    EXPECT_EQ(again.last_key, st.last_key);
}

TEST(ChangeFoldTest, ADeleteIsATombstone) {
    auto key = [](const char *id) { return sortable_id(*StreamId::parse(id)); };
    MessageState st = fold_changes({{key("5-0"), "reaction", "bob", "", "x", "add", 5},
                                    {key("6-0"), "delete", "admin", "", "", "", 6},
                                    {key("7-0"), "edit", "alice", "back", "", "", 7},
                                    {key("8-0"), "reaction", "bob", "", "y", "add", 8}});
    EXPECT_TRUE(st.deleted);
    EXPECT_EQ(st.text, "");
    EXPECT_EQ(st.deleted_by, "admin");
    EXPECT_EQ(st.deleted_ms, 6);
    EXPECT_TRUE(st.reactions.empty());
    EXPECT_EQ(st.last_key, key("8-0"));  // folded past it: an older fold never overwrites this one
}

TEST(ChangeFoldTest, ChangeEntriesBecomeDocumentsOrSayWhyNot) {
    bson_t doc = BSON_INITIALIZER;
    EXPECT_FALSE(build_change_document(entry({{"kind", "edit"}, {"roomId", "r"}, {"userId", std::string(24, 'a')},
                                              {"target", "1-0"}, {"text", "t"}}),
                                       &doc, false));
    bson_destroy(&doc);
    for (auto fields : std::vector<std::map<std::string, std::string>>{
             {{"kind", "move"}, {"roomId", "r"}, {"userId", std::string(24, 'a')}, {"target", "1-0"}},
             {{"kind", "edit"}, {"roomId", "r"}, {"userId", std::string(24, 'a')}, {"target", "1-0"}},
             {{"kind", "delete"}, {"roomId", "r"}, {"userId", std::string(24, 'a')}, {"target", "x"}},
             {{"kind", "reaction"}, {"roomId", "r"}, {"userId", std::string(24, 'a')}, {"target", "1-0"},
              {"emoji", "x"}, {"op", "toggle"}},
             {{"kind", "delete"}, {"roomId", "r"}, {"userId", "anon-1"}, {"target", "1-0"}}}) {
        bson_t d = BSON_INITIALIZER;
        std::optional<std::string> why = build_change_document(entry(fields), &d, false);
        bson_destroy(&d);
        EXPECT_TRUE(why && !why->empty()) << fields["kind"];
    }
}

}  // namespace
}  // namespace aurora::ingest
