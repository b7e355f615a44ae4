// The front door's pure parts: the request head parser (what decides
// whether a connection is a WebSocket the host serves itself) and the
// WebSocket frame reader/writer.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "http_head.h"
#include "ws_frame.h"

using namespace aurora::host;

namespace {

const char kUpgrade[] =
    "GET /ws?token=a%2Bb&x=1 HTTP/1.1\r\nHost: example\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Protocol: aurora, Bearer.abc.def\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-For: 5.6.7.8\r\n\r\n";

}  // namespace

TEST(HttpHead, ParsesAnUpgrade) {
    std::string err;
    auto h = parse_http_head(kUpgrade, err);
    ASSERT_TRUE(h) << err;
    EXPECT_EQ(h->method, "GET");
    EXPECT_EQ(h->path, "/ws");
    EXPECT_EQ(h->query, "token=a%2Bb&x=1");
    EXPECT_TRUE(h->is_websocket_upgrade());
    EXPECT_EQ(h->header("sec-websocket-version").value_or(""), "13");
    EXPECT_EQ(h->header_list("x-forwarded-for"), "1.2.3.4, 5.6.7.8");
    EXPECT_EQ(h->query_param("token").value_or(""), "a+b");
    EXPECT_EQ(h->query_param("x").value_or(""), "1");
    EXPECT_FALSE(h->query_param("missing"));
}

TEST(HttpHead, PlainRequestsAreNotUpgrades) {
    std::string err;
    auto h = parse_http_head("GET /health HTTP/1.1\r\nHost: x\r\n\r\n", err);
    ASSERT_TRUE(h) << err;
    EXPECT_FALSE(h->is_websocket_upgrade());
    auto post = parse_http_head("POST / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", err);
    ASSERT_TRUE(post) << err;
    EXPECT_FALSE(post->is_websocket_upgrade());
}

TEST(HttpHead, RefusesMalformedHeads) {
    std::string err;
    for (const char *bad : {"GET\r\n\r\n", "GET / HTTP/2.0\r\n\r\n", "GET relative HTTP/1.1\r\n\r\n",
                            "GET / HTTP/1.1\r\nNoColon\r\n\r\n", "GET / HTTP/1.1\r\n folded: x\r\n\r\n",
                            "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", "GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n",
                            "GET / HTTP/1.1\r\nX: y\r\n", "GET /a b HTTP/1.1\r\n\r\n"}) {
        EXPECT_FALSE(parse_http_head(bad, err)) << bad;
        EXPECT_FALSE(err.empty());
    }
}

TEST(HttpHead, PercentDecoding) {
    EXPECT_EQ(percent_decode("a%20b+c", true).value_or("?"), "a b c");
    EXPECT_EQ(percent_decode("a+b", false).value_or("?"), "a+b");
    EXPECT_FALSE(percent_decode("%0", true));
    EXPECT_FALSE(percent_decode("%", true));
    EXPECT_FALSE(percent_decode("%zz", true));
    EXPECT_FALSE(percent_decode("a%00b", true));
}

namespace {

std::string masked(uint8_t b0, std::string_view payload) {
    std::string f;
    f += static_cast<char>(b0);
    const unsigned char mask[4] = {0x11, 0x22, 0x33, 0x44};
    if (payload.size() < 126) {
        f += static_cast<char>(0x80 | payload.size());
    } else {
        f += static_cast<char>(0x80 | 126);
        f += static_cast<char>(payload.size() >> 8);
        f += static_cast<char>(payload.size() & 0xFF);
    }
    f.append(reinterpret_cast<const char *>(mask), 4);
    for (size_t i = 0; i < payload.size(); ++i) f += static_cast<char>(payload[i] ^ mask[i & 3]);
    return f;
}

struct Recorder : ws::FrameSink {
    std::vector<std::string> messages, controls;
    std::string cur;
    void on_data(ws::Opcode, std::string_view piece, bool first, bool last) override {
        if (first) cur.clear();
        cur += piece;
        if (last) messages.push_back(cur);
    }
    void on_control(ws::Opcode op, std::string_view payload) override {
        controls.push_back(std::to_string(op) + ":" + std::string(payload));
    }
};

bool feed_bytewise(ws::FrameReader &r, std::string bytes, Recorder &rec) {
    for (char ch : bytes) {
        auto b = static_cast<unsigned char>(ch);
        if (!r.feed(&b, 1, rec)) return false;
    }
    return true;
}

}  // namespace

TEST(WsFrame, ReassemblesFragmentsAndInterleavedPings) {
    std::string in = masked(0x01, "hel") + masked(0x89, "p1") + masked(0x89, "p2") + masked(0x80, "lo") +
                     masked(0x81, std::string(300, 'x'));
    for (bool bytewise : {false, true}) {
        ws::FrameReader r(1 << 20);
        Recorder rec;
        std::string copy = in;  // unmasked in place
        ASSERT_TRUE(bytewise ? feed_bytewise(r, in, rec)
                             : r.feed(reinterpret_cast<unsigned char *>(copy.data()), copy.size(), rec));
        ASSERT_EQ(rec.messages.size(), 2u);
        EXPECT_EQ(rec.messages[0], "hello");
        EXPECT_EQ(rec.messages[1], std::string(300, 'x'));
        EXPECT_EQ(rec.controls, (std::vector<std::string>{"9:p1", "9:p2"}));  // each ping reported
    }
}

TEST(WsFrame, ProtocolErrors) {
    struct Case {
        std::string bytes;
        uint16_t code;
    } cases[] = {
        {masked(0xC1, "x"), 1002},                                    // RSV1
        {masked(0x83, "x"), 1002},                                    // unknown opcode
        {masked(0x80, "x"), 1002},                                    // continuation without a message
        {masked(0x09, "p"), 1002},                                    // fragmented ping
        {masked(0x89, std::string(126, 'p')), 1002},                  // control over 125
        {masked(0x01, "a") + masked(0x81, "b"), 1002},                // new message inside a fragmented one
        {std::string("\x81\x01x", 3), 1002},                          // unmasked
        {masked(0x81, std::string(2000, 'y')), 1009},                 // over the limit
        {std::string("\x81\xFE\x00\x05", 4) + "mask" + "12345", 1002},  // length not in shortest form
    };
    for (Case &c : cases) {
        ws::FrameReader r(1000);
        Recorder rec;
        EXPECT_FALSE(r.feed(reinterpret_cast<unsigned char *>(c.bytes.data()), c.bytes.size(), rec));
        EXPECT_EQ(r.error_code(), c.code);
        EXPECT_TRUE(r.failed());
    }
}

TEST(WsFrame, Utf8AcrossPieces) {
    ws::Utf8Check u;
    const unsigned char a[] = {0xE6, 0x97}, b[] = {0xA5};
    EXPECT_TRUE(u.feed(a, 2));
    EXPECT_FALSE(u.complete());
    EXPECT_TRUE(u.feed(b, 1));
    EXPECT_TRUE(u.complete());
    for (std::string bad : {"\xff", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\x80"}) {
        ws::Utf8Check v;
        EXPECT_FALSE(v.feed(reinterpret_cast<const unsigned char *>(bad.data()), bad.size())) << bad;
    }
}

TEST(WsFrame, HeadersAndClosePayloads) {
    unsigned char h[10];
    EXPECT_EQ(ws::write_header(h, ws::kText, 5), 2u);
    EXPECT_EQ(h[0], 0x81);
    EXPECT_EQ(ws::write_header(h, ws::kPong, 200), 4u);
    EXPECT_EQ(h[0], 0x8A);
    EXPECT_EQ(ws::write_header(h, ws::kBinary, 70000), 10u);
    std::string p = ws::close_payload(1000, std::string(200, 'r'));
    EXPECT_EQ(p.size(), 125u);
    EXPECT_TRUE(ws::close_code_allowed(1000) && ws::close_code_allowed(4999) && ws::close_code_allowed(3000));
    EXPECT_FALSE(ws::close_code_allowed(1005) || ws::close_code_allowed(1006) || ws::close_code_allowed(5000) ||
                 ws::close_code_allowed(999) || ws::close_code_allowed(2000));
}

// Found by fuzz_frame_check: a "ref" of 1e999 (infinity) was echoed as null.
#include "frame_check.h"
#include "json.h"
TEST(FrameCheck, NonFiniteRefIsRefused) {
    FrameCheck f = check_frame(R"({"type":"echo","ref":1e999})");
    ASSERT_NE(f.error, nullptr);
    EXPECT_STREQ(f.error, "bad_field");
    FrameCheck ok = check_frame(R"({"type":"echo","ref":12})");
    EXPECT_EQ(ok.error, nullptr);
    EXPECT_EQ(ok.ref_json, "12");
    EXPECT_EQ(check_frame(R"({"text":"hi"})").type, "message");
    EXPECT_STREQ(check_frame(R"({"type":"echo","text":"\ud800"})").error, "bad_utf8");
}

// A key twice at the top level is bad_json, in small frames (compared in
// place) and in large ones (sorted): the duplicate first, last, or far apart.
TEST(FrameCheck, AKeyTwiceIsRefusedWhateverTheSize) {
    auto frame = [](int keys, int dup_of, int dup_at) {
        std::string s = "{\"type\":\"echo\"";
        for (int i = 0; i < keys; ++i) {
            int name = i == dup_at ? dup_of : i;
            s += ",\"k" + std::to_string(name) + "\":" + std::to_string(i);
        }
        return s + "}";
    };
    for (int keys : {2, 3, 16, 17, 40}) {
        FrameCheck ok = check_frame(frame(keys, -1, -1));
        EXPECT_EQ(ok.error, nullptr) << keys << ": " << (ok.error ? ok.error : "") << " " << ok.message;
        FrameCheck first = check_frame(frame(keys, 0, 1));
        ASSERT_NE(first.error, nullptr) << keys;
        EXPECT_STREQ(first.error, "bad_json");
        FrameCheck far = check_frame(frame(keys, 0, keys - 1));
        ASSERT_NE(far.error, nullptr) << keys;
        EXPECT_STREQ(far.error, "bad_json");
    }
    EXPECT_EQ(check_frame(R"({"type":"echo","a":{"x":1,"x":2},"b":1})").error, nullptr);  // nested: the plugins'
}

// "\u0000" would end the string in cJSON: "a\u0000b" read as "a", the rest
// lost. Refused, in values and keys; an escaped backslash before "u0000"
// is text and passes.
TEST(FrameCheck, ANulEscapeIsRefusedNotCutShort) {
    for (const char *bad : {R"({"type":"echo","text":"a\u0000b"})", R"({"text":"\u0000"})",
                            R"({"type":"echo","k\u0000":1})", R"({"type":"echo","text":"x\\\u0000"})"}) {
        FrameCheck f = check_frame(bad);
        ASSERT_NE(f.error, nullptr) << bad;
        EXPECT_STREQ(f.error, "bad_json") << bad;
        EXPECT_NE(std::string(f.message).find("u0000"), std::string::npos) << f.message;
    }
    EXPECT_EQ(check_frame(R"({"type":"echo","text":"a\\u0000b"})").error, nullptr);
    EXPECT_EQ(check_frame(R"({"type":"echo","text":"\\\\u0000"})").error, nullptr);
    EXPECT_EQ(check_frame(R"({"type":"echo","text":"\u0001"})").error, nullptr);
    EXPECT_TRUE(aurora::plugin::has_nul(R"("\u0000")"));
    EXPECT_FALSE(aurora::plugin::has_nul(R"("\\u0000")"));
    EXPECT_FALSE(aurora::plugin::has_nul("\"\\"));  // a lone backslash at the end
    // A raw NUL byte: cJSON takes raw control bytes in strings and would stop at it.
    const std::string raw("{\"type\":\"echo\",\"text\":\"abc\0def\"}", 32);
    EXPECT_TRUE(aurora::plugin::has_nul(raw));
    FrameCheck f = check_frame(raw);
    ASSERT_NE(f.error, nullptr);
    EXPECT_STREQ(f.error, "bad_json");
}
