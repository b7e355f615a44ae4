#include "ws_frame.h"

#include <algorithm>
#include <cstring>

namespace aurora::host::ws {

bool close_code_allowed(uint16_t code) {
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) || (code >= 3000 && code <= 4999);
}

bool Utf8Check::feed(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        const unsigned char c = p[i];
        if (need_) {
            if (c < lo_ || c > hi_) return false;
            lo_ = 0x80;
            hi_ = 0xBF;
            --need_;
            continue;
        }
        if (c < 0x80) continue;
        if (c < 0xC2 || c > 0xF4) return false;  // continuation byte first, overlong 2-byte, or above U+10FFFF
        if (c < 0xE0) {
            need_ = 1;
        } else if (c < 0xF0) {
            need_ = 2;
            if (c == 0xE0) lo_ = 0xA0;       // overlong
            else if (c == 0xED) hi_ = 0x9F;  // surrogates
        } else {
            need_ = 3;
            if (c == 0xF0) lo_ = 0x90;       // overlong
            else if (c == 0xF4) hi_ = 0x8F;  // above U+10FFFF
        }
    }
    return true;
}

bool FrameReader::fail(uint16_t code, const char *reason) {
    error_code_ = code;
    error_reason_ = reason;
    return false;
}

// The header is complete: check it against RFC 6455 §5.2-5.5.
bool FrameReader::header_done(FrameSink &sink) {
    const uint8_t b0 = head_[0], b1 = head_[1];
    fin_ = (b0 & 0x80) != 0;
    opcode_ = b0 & 0x0F;
    const bool rsv1 = (b0 & 0x40) != 0;
    if (b0 & 0x30) return fail(kProtocolError, "reserved bits set");
    // RSV1: "compressed" (permessage-deflate, RFC 7692 §6), on a message's first frame only.
    if (rsv1 && (!allow_compressed_ || (opcode_ != kText && opcode_ != kBinary)))
        return fail(kProtocolError, allow_compressed_ ? "RSV1 on a frame that is not a message's first"
                                                      : "reserved bits set");
    if (!(b1 & 0x80)) return fail(kProtocolError, "client frames must be masked");
    uint64_t len = b1 & 0x7F;
    size_t at = 2;
    if (len == 126) {
        len = static_cast<uint64_t>(head_[2]) << 8 | head_[3];
        at = 4;
        if (len < 126) return fail(kProtocolError, "length not in its shortest form");
    } else if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; ++i) len = len << 8 | head_[2 + i];
        at = 10;
        if (len >> 63) return fail(kProtocolError, "length over 2^63");
        if (len <= 0xFFFF) return fail(kProtocolError, "length not in its shortest form");
    }
    std::memcpy(mask_, head_ + at, 4);
    mask_pos_ = 0;
    remaining_ = len;
    const bool control = opcode_ & 0x8;
    if (control) {
        if (opcode_ != kClose && opcode_ != kPing && opcode_ != kPong) return fail(kProtocolError, "unknown opcode");
        if (!fin_) return fail(kProtocolError, "fragmented control frame");
        if (len > 125) return fail(kProtocolError, "control frame over 125 bytes");
        control_.clear();
    } else if (opcode_ == kCont) {
        if (!msg_opcode_) return fail(kProtocolError, "continuation without a message");
    } else if (opcode_ == kText || opcode_ == kBinary) {
        if (msg_opcode_) return fail(kProtocolError, "new message inside a fragmented one");
        msg_opcode_ = opcode_;
        msg_len_ = 0;
        msg_first_ = true;
        msg_compressed_ = rsv1;
    } else {
        return fail(kProtocolError, "unknown opcode");
    }
    if (!control) {
        msg_len_ += len;
        if (msg_len_ > max_message_) return fail(kTooBig, "message too large");
    }
    in_payload_ = true;
    if (len == 0) {  // nothing to wait for: report now
        in_payload_ = false;
        if (control) {
            sink.on_control(static_cast<Opcode>(opcode_), {});
        } else if (fin_ || msg_first_) {
            // An empty final frame ends the message; an empty first frame
            // starts it (so that its first piece is reported even if empty).
            const bool last = fin_;
            sink.on_data(static_cast<Opcode>(msg_opcode_), {}, msg_first_, last);
            msg_first_ = false;
            if (last) msg_opcode_ = 0;
        }
    }
    return true;
}

bool FrameReader::feed(unsigned char *data, size_t n, FrameSink &sink) {
    if (failed()) return false;
    size_t i = 0;
    while (i < n) {
        if (!in_payload_) {
            // Header: 2 bytes tell how many more (extended length, mask).
            while (i < n && head_len_ < head_need_) {
                head_[head_len_++] = data[i++];
                if (head_len_ == 2) {
                    // Fail fast: an unmasked frame would otherwise wait for mask bytes that never come.
                    if (!(head_[1] & 0x80)) return fail(kProtocolError, "client frames must be masked");
                    const uint8_t len7 = head_[1] & 0x7F;
                    head_need_ = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;
                }
            }
            if (head_len_ < head_need_) return true;  // more later
            head_len_ = 0;
            head_need_ = 2;
            if (!header_done(sink)) return false;
            continue;
        }
        const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, n - i));
        unsigned char *p = data + i;  // unmasked where it lies
        for (size_t k = 0; k < take; ++k) p[k] ^= mask_[(mask_pos_ + k) & 3];
        std::string_view piece(reinterpret_cast<const char *>(p), take);
        mask_pos_ = (mask_pos_ + take) & 3;
        remaining_ -= take;
        i += take;
        const bool frame_done = remaining_ == 0;
        if (opcode_ & 0x8) {
            control_ += piece;
            if (frame_done) {
                in_payload_ = false;
                sink.on_control(static_cast<Opcode>(opcode_), control_);
            }
            continue;
        }
        const bool last = frame_done && fin_;
        sink.on_data(static_cast<Opcode>(msg_opcode_), piece, msg_first_, last);
        msg_first_ = false;
        if (frame_done) in_payload_ = false;
        if (last) msg_opcode_ = 0;
    }
    return true;
}

size_t write_header(unsigned char *out, Opcode opcode, size_t len, bool compressed) {
    out[0] = static_cast<unsigned char>(0x80 | (compressed ? 0x40 : 0) | opcode);
    if (len < 126) {
        out[1] = static_cast<unsigned char>(len);
        return 2;
    }
    if (len <= 0xFFFF) {
        out[1] = 126;
        out[2] = static_cast<unsigned char>(len >> 8);
        out[3] = static_cast<unsigned char>(len);
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; ++i) out[2 + i] = static_cast<unsigned char>(uint64_t{len} >> (56 - 8 * i));
    return 10;
}

std::string close_payload(uint16_t code, std::string_view reason) {
    std::string out;
    out += static_cast<char>(code >> 8);
    out += static_cast<char>(code & 0xFF);
    size_t n = std::min<size_t>(reason.size(), 123);
    while (n > 0 && n < reason.size() && (static_cast<unsigned char>(reason[n]) & 0xC0) == 0x80) --n;
    out.append(reason.substr(0, n));
    return out;
}

}  // namespace aurora::host::ws
