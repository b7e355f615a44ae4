// permessage-deflate's pure parts: the negotiation (RFC 7692 §5, §7.1), the
// compressor and the bounded inflater, and RSV1 in the frame reader.
#include <gtest/gtest.h>

#include <zlib.h>

#include <string>
#include <vector>

#include "ws_deflate.h"
#include "ws_frame.h"

using namespace aurora::host;

namespace {

std::string negotiated(std::string_view offers, CompressionSettings s = {}) {
    std::string response;
    auto p = ws::negotiate_deflate(offers, s, response);
    return p ? response : "none";
}

std::string text_of(const std::vector<unsigned char> &v) { return std::string(v.begin(), v.end()); }

}  // namespace

TEST(Deflate, NegotiatesTheFirstAcceptableOffer) {
    const std::string base = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
    auto with_bits = [](int n) {
        return "permessage-deflate; server_no_context_takeover; server_max_window_bits=" + std::to_string(n) +
               "; client_no_context_takeover";
    };
    EXPECT_EQ(negotiated("permessage-deflate"), base);
    EXPECT_EQ(negotiated("permessage-deflate; client_max_window_bits"), base);  // browsers' offer
    EXPECT_EQ(negotiated("x-webkit-deflate-frame, permessage-deflate"), base);
    EXPECT_EQ(negotiated("permessage-deflate; server_max_window_bits=10"), with_bits(10));
    EXPECT_EQ(negotiated("permessage-deflate; server_max_window_bits=\"12\""), with_bits(12));
    // An offer we cannot take is skipped, the next one is taken.
    EXPECT_EQ(negotiated("permessage-deflate; server_max_window_bits=16, permessage-deflate"), base);
    EXPECT_EQ(negotiated("permessage-deflate; unknown_param, permessage-deflate; server_max_window_bits=9"),
              with_bits(9));
    for (const char *bad : {"permessage-deflate; server_max_window_bits", "permessage-deflate; server_max_window_bits=7",
                            "permessage-deflate; client_max_window_bits=0", "permessage-deflate; client_max_window_bits=08",
                            "permessage-deflate; server_no_context_takeover=1",
                            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
                            "deflate-frame", "", ",,;;", "permessage-deflate; =", "permessage-deflate; \"a,b\""}) {
        EXPECT_EQ(negotiated(bad), "none") << bad;
    }
    CompressionSettings off;
    off.enabled = false;
    EXPECT_EQ(negotiated("permessage-deflate", off), "none");
}

TEST(Deflate, ClientContextTakeoverOnlyWhenBothWantIt) {
    CompressionSettings keep;
    keep.client_context_takeover = true;
    std::string response;
    auto p = ws::negotiate_deflate("permessage-deflate", keep, response);
    ASSERT_TRUE(p);
    EXPECT_TRUE(p->client_context);
    EXPECT_EQ(response, "permessage-deflate; server_no_context_takeover");
    p = ws::negotiate_deflate("permessage-deflate; client_no_context_takeover", keep, response);
    ASSERT_TRUE(p);
    EXPECT_FALSE(p->client_context);
    p = ws::negotiate_deflate("permessage-deflate; server_max_window_bits=8", {}, response);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->server_bits, 9);  // zlib has no raw 8-bit window; 9 never reaches back past 250 bytes
}

TEST(Deflate, RoundTripsAndStripsTheTail) {
    ws::Deflater d(CompressionSettings{});
    ws::Inflater inf;
    ASSERT_TRUE(inf.ok());
    const std::string msg = R"({"type":"message","room":"general","text":"hello hello hello hello","ts":1})";
    for (int bits : {9, 10, 15}) {
        std::vector<unsigned char> z;
        ASSERT_TRUE(d.compress(msg, bits, z));
        ASSERT_GE(z.size(), 4u);
        EXPECT_NE(text_of(std::vector<unsigned char>(z.end() - 4, z.end())), std::string("\0\0\xff\xff", 4));
        EXPECT_LT(z.size(), msg.size());
        std::string out;
        ASSERT_EQ(inf.inflate(text_of(z), 1 << 20, 1 << 20, false, out), ws::Inflater::Result::Ok);
        EXPECT_EQ(out, msg);
    }
    // RFC 7692 §7.2.3.1's example: "Hello" compressed.
    std::string out;
    ASSERT_EQ(inf.inflate(std::string("\xf2\x48\xcd\xc9\xc9\x07\x00", 7), 100, 100, false, out), ws::Inflater::Result::Ok);
    EXPECT_EQ(out, "Hello");
}

TEST(Deflate, InflaterStopsABombAndRefusesGarbage) {
    // 16 MiB of zeros deflate to about 72 KiB at level 1.
    std::string zeros(16u << 20, '\0');
    ws::Deflater d(CompressionSettings{});
    std::vector<unsigned char> z;
    ASSERT_TRUE(d.compress(zeros, 15, z));
    ASSERT_LT(z.size(), 128u * 1024);
    ws::Inflater inf;
    std::string out;
    EXPECT_EQ(inf.inflate(text_of(z), 4096, 1 << 20, false, out), ws::Inflater::Result::Bomb);
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(inf.inflate(std::string("\xff\xff\xff\xff garbage", 12), 4096, 1 << 20, false, out),
              ws::Inflater::Result::Corrupt);
    // The shared stream recovers for the next message.
    std::vector<unsigned char> ok;
    ASSERT_TRUE(d.compress("fine", 15, ok));
    EXPECT_EQ(inf.inflate(text_of(ok), 100, 100, false, out), ws::Inflater::Result::Ok);
    EXPECT_EQ(out, "fine");
}

TEST(Deflate, OverTheLimitButUnderTheHardOneIsTooLargeAndKeepsTheContext) {
    // As for uncompressed messages: past max the message is refused (too_large,
    // the connection stays), past the hard max it is a bomb.
    ws::Deflater d(CompressionSettings{});
    std::string big(10000, 'x');
    std::vector<unsigned char> z;
    ASSERT_TRUE(d.compress(big, 15, z));
    ws::Inflater inf;
    std::string out = "left over";
    EXPECT_EQ(inf.inflate(text_of(z), 4096, 65536, false, out), ws::Inflater::Result::TooLarge);
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(inf.inflate(text_of(z), 4096, 9999, false, out), ws::Inflater::Result::Bomb);
    EXPECT_EQ(inf.inflate(text_of(z), 10000, 10000, false, out), ws::Inflater::Result::Ok);
    EXPECT_EQ(out, big);
}

TEST(Deflate, ContextTakeoverKeepsTheWindow) {
    // A client with context takeover: the second message refers back into the first.
    z_stream zs{};
    ASSERT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    auto next = [&zs](const std::string &in) {
        std::vector<unsigned char> out(in.size() + 64);
        zs.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(in.data()));
        zs.avail_in = static_cast<uInt>(in.size());
        zs.next_out = out.data();
        zs.avail_out = static_cast<uInt>(out.size());
        EXPECT_EQ(deflate(&zs, Z_SYNC_FLUSH), Z_OK);
        out.resize(out.size() - zs.avail_out - 4);
        return std::string(out.begin(), out.end());
    };
    const std::string m = "a sentence long enough to be referred back to, later on";
    std::string first = next(m), second = next(m);
    deflateEnd(&zs);
    EXPECT_LT(second.size(), first.size() / 2);
    ws::Inflater keep;
    std::string out;
    ASSERT_EQ(keep.inflate(first, 1000, 1000, true, out), ws::Inflater::Result::Ok);
    ASSERT_EQ(keep.inflate(second, 1000, 1000, true, out), ws::Inflater::Result::Ok);
    EXPECT_EQ(out, m);
    ws::Inflater fresh;  // without the first message's window, the second does not inflate
    EXPECT_NE(fresh.inflate(second, 1000, 1000, false, out), ws::Inflater::Result::Ok);
    // A message refused as too large was still inflated: the window stays in step.
    ws::Inflater refused;
    ASSERT_EQ(refused.inflate(first, 10, 1000, true, out), ws::Inflater::Result::TooLarge);
    ASSERT_EQ(refused.inflate(second, 1000, 1000, true, out), ws::Inflater::Result::Ok);
    EXPECT_EQ(out, m);
}

namespace {

std::string masked(uint8_t b0, std::string_view payload) {
    std::string f;
    f += static_cast<char>(b0);
    f += static_cast<char>(0x80 | payload.size());  // short payloads only
    const unsigned char mask[4] = {1, 2, 3, 4};
    f.append(reinterpret_cast<const char *>(mask), 4);
    for (size_t i = 0; i < payload.size(); ++i) f += static_cast<char>(payload[i] ^ mask[i & 3]);
    return f;
}

struct Sink : ws::FrameSink {
    ws::FrameReader *r = nullptr;
    std::vector<bool> compressed;
    void on_data(ws::Opcode, std::string_view, bool first, bool) override {
        if (first) compressed.push_back(r->compressed());
    }
    void on_control(ws::Opcode, std::string_view) override {}
};

bool feed(ws::FrameReader &r, std::string bytes, Sink &s) {
    s.r = &r;
    return r.feed(reinterpret_cast<unsigned char *>(bytes.data()), bytes.size(), s);
}

}  // namespace

TEST(Deflate, Rsv1OnlyOnAMessagesFirstFrameOnceNegotiated) {
    {
        ws::FrameReader r(1 << 20);
        Sink s;
        EXPECT_FALSE(feed(r, masked(0xC1, "x"), s));  // not negotiated: a reserved bit
        EXPECT_EQ(r.error_code(), 1002);
    }
    {
        ws::FrameReader r(1 << 20);
        r.allow_compressed();
        Sink s;
        ASSERT_TRUE(feed(r, masked(0xC1, "x") + masked(0x81, "y") + masked(0x41, "a") + masked(0x80, "b"), s));
        EXPECT_EQ(s.compressed, (std::vector<bool>{true, false, true}));
    }
    for (std::string bad : {masked(0x01, "a") + masked(0xC0, "b"),  // RSV1 on a continuation
                            masked(0xC9, "p"),                      // on a ping
                            masked(0xA1, "x")}) {                   // RSV2 stays reserved
        ws::FrameReader r(1 << 20);
        r.allow_compressed();
        Sink s;
        EXPECT_FALSE(feed(r, bad, s));
        EXPECT_EQ(r.error_code(), 1002);
    }
}
