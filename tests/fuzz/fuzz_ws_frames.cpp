// The host's WebSocket frame reader and UTF-8 check (host/src/ws_frame.h).
//
// The input picks a message size limit and a chunk size, then is fed to one
// FrameReader in chunks and to another at once: both must report the same
// messages (with their RSV1 "compressed" flag, half the runs with
// permessage-deflate negotiated), control frames and error (framing does not depend on how TCP cut
// the bytes). A sink checks what the reader promises: pieces of one message
// never add up to more than the limit, `first` opens and `last` closes each
// message exactly once, control payloads are at most 125 bytes. Differential:
// the incremental Utf8Check (over pieces, and over the raw input cut in two)
// must agree with json_text.cpp's valid_utf8 on the same bytes.
#include <fuzzer/FuzzedDataProvider.h>

#include <string>
#include <vector>

#include "fuzz_check.h"
#include "json_text.h"
#include "ws_frame.h"

using namespace aurora::host;
using namespace aurora::host::ws;

namespace {

struct Event {
    int kind;  // 0: a whole data message, 1: control frame
    int opcode;
    std::string payload;
    bool compressed = false;  // RSV1 on the message's first frame (permessage-deflate)
    bool operator==(const Event &) const = default;
};

class CheckingSink : public FrameSink {
public:
    CheckingSink(uint64_t max, const FrameReader &reader) : max_(max), reader_(reader) {}

    void on_data(Opcode opcode, std::string_view piece, bool first, bool last) override {
        FUZZ_CHECK(opcode == kText || opcode == kBinary);
        if (first) {
            FUZZ_CHECK(!in_message_);  // `first` once per message, and only outside one
            in_message_ = true;
            opcode_ = opcode;
            compressed_ = reader_.compressed();
            message_.clear();
            utf8_.reset();
            utf8_ok_ = true;
        } else {
            FUZZ_CHECK(in_message_);  // nothing after `last` until the next `first`
            FUZZ_CHECK(opcode == opcode_);
            FUZZ_CHECK(reader_.compressed() == compressed_);  // one flag for the whole message
        }
        message_.append(piece);
        FUZZ_CHECK(message_.size() <= max_);
        if (opcode == kText && utf8_ok_)
            utf8_ok_ = utf8_.feed(reinterpret_cast<const unsigned char *>(piece.data()), piece.size());
        if (last) {
            if (opcode == kText) {
                // The same verdict whichever way the bytes came.
                FUZZ_CHECK((utf8_ok_ && utf8_.complete()) == valid_utf8(message_));
            }
            events.push_back({0, opcode, message_, compressed_});
            in_message_ = false;
        }
    }

    void on_control(Opcode opcode, std::string_view payload) override {
        FUZZ_CHECK(opcode == kClose || opcode == kPing || opcode == kPong);
        FUZZ_CHECK(payload.size() <= 125);
        events.push_back({1, opcode, std::string(payload)});
    }

    bool in_message() const { return in_message_; }
    std::vector<Event> events;

private:
    uint64_t max_;
    const FrameReader &reader_;
    bool compressed_ = false;
    bool in_message_ = false;
    int opcode_ = 0;
    std::string message_;
    Utf8Check utf8_;
    bool utf8_ok_ = true;
};

void utf8_differential(std::string_view bytes, size_t cut) {
    const auto *p = reinterpret_cast<const unsigned char *>(bytes.data());
    const bool expect = valid_utf8(bytes);
    Utf8Check whole;
    FUZZ_CHECK((whole.feed(p, bytes.size()) && whole.complete()) == expect);
    cut = std::min(cut, bytes.size());
    Utf8Check split;
    bool ok = split.feed(p, cut) && split.feed(p + cut, bytes.size() - cut);
    FUZZ_CHECK((ok && split.complete()) == expect);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    utf8_differential(fuzz_bytes(data, size), size / 2);

    FuzzedDataProvider in(data, size);
    static const uint64_t kLimits[] = {0, 1, 125, 126, 1000, 65535, 65536, 1 << 20, UINT64_MAX >> 1};
    const uint64_t max = in.PickValueInArray(kLimits);
    const size_t chunk = in.ConsumeIntegralInRange<size_t>(1, 64);
    const size_t cut = in.ConsumeIntegral<uint16_t>();
    const std::string stream = in.ConsumeRemainingBytesAsString();
    utf8_differential(stream, cut);
    // The reader unmasks in place: each run reads its own copy.
    std::string copy_whole = stream, copy_chunks = stream;

    // permessage-deflate negotiated or not (RSV1 allowed on a message's first frame).
    const bool deflate = cut & 0x8000;

    // At once.
    FrameReader whole(max);
    if (deflate) whole.allow_compressed();
    CheckingSink sink_whole(max, whole);
    bool ok_whole = whole.feed(reinterpret_cast<unsigned char *>(copy_whole.data()), stream.size(), sink_whole);
    FUZZ_CHECK(ok_whole == !whole.failed());
    // A message the sink saw open is one the reader is in (the reader opens it at
    // the header, the sink at the first payload byte).
    if (ok_whole && sink_whole.in_message()) FUZZ_CHECK(whole.in_message());

    // In chunks; and once it failed, it reads nothing more.
    FrameReader chunks(max);
    if (deflate) chunks.allow_compressed();
    CheckingSink sink_chunks(max, chunks);
    bool ok_chunks = true;
    for (size_t at = 0; at < stream.size(); at += chunk) {
        size_t n = std::min(chunk, stream.size() - at);
        size_t before = sink_chunks.events.size();
        bool ok = chunks.feed(reinterpret_cast<unsigned char *>(copy_chunks.data()) + at, n, sink_chunks);
        if (!ok_chunks) FUZZ_CHECK(!ok && sink_chunks.events.size() == before);
        ok_chunks = ok_chunks && ok;
    }
    FUZZ_CHECK(ok_chunks == ok_whole);
    FUZZ_CHECK(chunks.error_code() == whole.error_code());
    FUZZ_CHECK(sink_chunks.events == sink_whole.events);
    if (whole.failed()) {
        const uint16_t code = whole.error_code();
        FUZZ_CHECK(code == kProtocolError || code == kTooBig);
        FUZZ_CHECK(*whole.error_reason() != '\0');
    }

    // The writer side: a header for any length, and a close payload that fits.
    unsigned char head[10];
    size_t hn = write_header(head, kText, stream.size());
    FUZZ_CHECK(hn == (stream.size() < 126 ? 2u : stream.size() <= 0xFFFF ? 4u : 10u));
    std::string close = close_payload(static_cast<uint16_t>(cut), stream);
    FUZZ_CHECK(close.size() >= 2 && close.size() <= 125);
    FUZZ_CHECK(std::string_view(stream).starts_with(std::string_view(close).substr(2)));
    if (valid_utf8(stream)) FUZZ_CHECK(valid_utf8(std::string_view(close).substr(2)));
    return 0;
}
