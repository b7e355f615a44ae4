// permessage-deflate (RFC 7692): the negotiation, the server's compressor
// and the inflater of client messages. Pure code over bytes and zlib: no
// sockets; tests/host/unit and the fuzz harness drive it directly.
//
// Designed for fan-out: the server always answers server_no_context_takeover,
// so a message compresses the same way for every recipient and a broadcast
// is compressed once (the compressed bytes are cached on the shared
// OutFrame), not once per member. The compressor is one zlib stream per
// window size for the whole host (service thread), reset per message; no
// connection holds a deflate state. Client messages are inflated when the
// message is complete: by one shared stream when the client is asked not to
// keep its context (client_no_context_takeover, the default), else by a
// stream of the connection's own (measured in docs/performance.md).
#pragma once

#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"

namespace aurora::host::ws {

// What one connection negotiated.
struct DeflateParams {
    int server_bits = 15;               // the compressor's window (server_max_window_bits; 8 is compressed as 9)
    bool client_context = false;        // the client keeps its context between messages
};

// Chooses the first acceptable permessage-deflate offer of a
// Sec-WebSocket-Extensions header value (all its fields joined by ", ") and
// writes the response's header value to `response`. nullopt when there is no
// acceptable offer (or compression is off): then no extension is used. An
// offer with an unknown or repeated parameter or a bad value is skipped
// (§5, §7.1).
std::optional<DeflateParams> negotiate_deflate(std::string_view offers, const CompressionSettings &settings,
                                               std::string &response);

// The server's compressor: raw deflate, Z_SYNC_FLUSH, the final 00 00 FF FF
// removed (§7.2.1). One zlib stream per window size, made on first use and
// reset per message. Service thread.
class Deflater {
public:
    explicit Deflater(const CompressionSettings &s) : level_(s.level), mem_level_(s.mem_level) {}
    ~Deflater();
    Deflater(const Deflater &) = delete;
    Deflater &operator=(const Deflater &) = delete;
    // Compresses `in` into `out` (replaced). False if zlib failed.
    bool compress(std::string_view in, int window_bits, std::vector<unsigned char> &out);

private:
    int level_, mem_level_;
    std::unique_ptr<z_stream> streams_[16];  // by window bits (9..15)
};

// An inflater of client messages, bounded twice like uncompressed ones: a
// message inflating past `max_keep` is inflated to its end but not kept (the
// caller answers too_large and the connection, and a kept context, carry on);
// past `max_total` inflation stops (a decompression bomb, having produced at
// most max_total + one chunk; the caller fails the connection).
class Inflater {
public:
    enum class Result { Ok, TooLarge, Bomb, Corrupt };
    Inflater();
    ~Inflater();
    Inflater(const Inflater &) = delete;
    Inflater &operator=(const Inflater &) = delete;
    bool ok() const { return ok_; }
    // One whole message's compressed payload (the frames' payloads joined).
    // `keep_context`: the window of earlier messages stays (the client's
    // context takeover); otherwise the stream is reset first.
    // `out` holds the message on Ok and is empty otherwise.
    Result inflate(std::string_view in, size_t max_keep, size_t max_total, bool keep_context, std::string &out);
    // Bytes the last inflate produced (kept or not): the work it cost.
    size_t inflated() const { return inflated_; }

private:
    z_stream zs_{};
    bool ok_ = false;
    size_t inflated_ = 0;
};

}  // namespace aurora::host::ws
