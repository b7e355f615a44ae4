// RFC 6455 framing, server side: the reader of client frames (masked) and
// the writer of server frames (unmasked). Pure code over bytes: no sockets,
// no lws; tests/host/unit and the fuzz harness drive it directly.
//
// Why the host frames WebSockets itself rather than through lws 4.1.6:
// lws answers only the first of several pings in flight and writes its pong
// after frames the host wrote directly in the same loop turn (so a pong is
// overtaken); it echoes malformed close frames; after a protocol error it
// waits 5 s for an echo before closing; and its own close frame is lost on
// libuv in Debian's _DEBUG build. Owning the frames puts every pong, close
// and data frame in one queue, in order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace aurora::host::ws {

enum Opcode : uint8_t { kCont = 0x0, kText = 0x1, kBinary = 0x2, kClose = 0x8, kPing = 0x9, kPong = 0xA };

// Close codes the host sends (RFC 6455 §7.4.1).
enum CloseCode : uint16_t {
    kNormal = 1000,
    kGoingAway = 1001,
    kProtocolError = 1002,
    kInvalidPayload = 1007,
    kPolicy = 1008,
    kTooBig = 1009,
    kInternal = 1011,
};

// True for a code a peer may put in a close frame (§7.4.1, §7.4.2).
bool close_code_allowed(uint16_t code);

// Incremental UTF-8 check across fragments (no overlongs, no surrogates,
// nothing above U+10FFFF). `complete()` at the end of a message.
class Utf8Check {
public:
    bool feed(const unsigned char *p, size_t n);
    bool complete() const { return need_ == 0; }
    void reset() { *this = Utf8Check(); }

private:
    uint8_t need_ = 0, lo_ = 0x80, hi_ = 0xBF;
};

// What the reader reports, in the order the bytes came.
class FrameSink {
public:
    virtual ~FrameSink() = default;
    // A piece of a data message's payload (unmasked). `opcode` is the
    // message's (text or binary, also on continuation frames); `first` on
    // its first piece; `last` on the last piece of its final frame. The
    // whole message's announced length so far is checked by the reader.
    virtual void on_data(Opcode opcode, std::string_view piece, bool first, bool last) = 0;
    // A whole control frame (payload at most 125 bytes, unmasked).
    virtual void on_control(Opcode opcode, std::string_view payload) = 0;
};

// Reads client frames from a byte stream. After an error it reads nothing
// more: the caller closes with error_code().
class FrameReader {
public:
    // A data message longer than `max_message` bytes (the sum of its frames'
    // lengths, known from their headers) is an error (1009) as soon as the
    // header that crosses it is read.
    explicit FrameReader(uint64_t max_message) : max_message_(max_message) {}

    // Consumes all of `data`, calling `sink` for what completes. The payload
    // is unmasked in place (the caller's read buffer: no copy), so `data` is
    // changed. False on a protocol error (then error_code()/error_reason()
    // say which).
    bool feed(unsigned char *data, size_t n, FrameSink &sink);

    bool failed() const { return error_code_ != 0; }
    uint16_t error_code() const { return error_code_; }
    const char *error_reason() const { return error_reason_; }
    bool in_message() const { return msg_opcode_ != 0; }
    // permessage-deflate was negotiated: RSV1 marks a compressed message.
    void allow_compressed() { allow_compressed_ = true; }
    // During on_data: the message's first frame had RSV1 (its pieces are
    // compressed bytes, to be inflated once the message is whole).
    bool compressed() const { return msg_compressed_; }

private:
    bool fail(uint16_t code, const char *reason);
    bool header_done(FrameSink &sink);

    uint64_t max_message_;
    // the frame being read
    unsigned char head_[14] = {};
    size_t head_len_ = 0, head_need_ = 2;
    bool in_payload_ = false;
    uint8_t opcode_ = 0;
    bool fin_ = false;
    uint64_t remaining_ = 0;
    unsigned char mask_[4] = {};
    size_t mask_pos_ = 0;
    std::string control_;  // a control frame's payload, gathered
    // the data message in progress (0: none)
    uint8_t msg_opcode_ = 0;
    uint64_t msg_len_ = 0;
    bool msg_first_ = true;
    bool msg_compressed_ = false;
    bool allow_compressed_ = false;
    uint16_t error_code_ = 0;
    const char *error_reason_ = "";
};

// A server frame's header for a payload of `len` bytes (final, unmasked;
// RSV1 set when `compressed`); writes 2, 4 or 10 bytes to `out` and returns
// how many.
size_t write_header(unsigned char *out, Opcode opcode, size_t len, bool compressed = false);

// A close frame's payload: the code, then the reason cut to fit 125 bytes
// (at a character boundary).
std::string close_payload(uint16_t code, std::string_view reason);

}  // namespace aurora::host::ws
