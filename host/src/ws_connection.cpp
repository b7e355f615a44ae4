// A WebSocket connection's bytes on the host's libuv loop: reading frames,
// answering control frames, closing. Everything here runs on the service
// thread; writing the queue is Outbound's (outbound.h).
//
// Closing: our close frame goes last in the queue; once it is on the wire
// the write side is shut down (FIN) and the socket is closed when the
// client's close frame or EOF arrives, or at close_deadline_ms
// (heartbeat_tick).
#include <algorithm>
#include <cstring>

#include "host.h"
#include "log.h"

namespace aurora::host {

namespace {

constexpr uint64_t kCloseWaitMs = 1000;  // for the client's answer to our close frame

aurora_conn *conn_of(const uv_handle_t *h) { return static_cast<aurora_conn *>(h->data); }

}  // namespace

void Host::on_read(aurora_conn *c, ssize_t nread, const uv_buf_t *buf) {
    if (nread < 0) {  // EOF or an error: the connection is over
        if (!c->closing) m_.closes_client->add(1);  // gone without a close frame
        c->closing = true;
        close_handle(c);
        return;
    }
    if (nread == 0) return;
    auto *data = reinterpret_cast<unsigned char *>(buf->base);  // Host::read_buf_: unmasked in place
    if (c->peer_closed) return;  // nothing may follow a close frame
    alive(c);
    struct Sink : ws::FrameSink {
        Host *h;
        aurora_conn *c;
        void on_data(ws::Opcode op, std::string_view piece, bool first, bool last) override {
            h->on_data(c, op, piece, first, last);
        }
        void on_control(ws::Opcode op, std::string_view payload) override { h->on_control(c, op, payload); }
    } sink;
    sink.h = this;
    sink.c = c;
    if (!c->reader.feed(data, static_cast<size_t>(nread), sink) && !c->closing) {
        uint16_t code = c->reader.error_code();
        protocol_close(c, code, c->reader.error_reason(),
                       code == ws::kTooBig ? m_.closes_too_large : m_.closes_protocol);
    }
}

// The host fails the connection (RFC 6455 §7.1.7): the close frame goes out
// at once, ahead of anything still queued.
void Host::protocol_close(aurora_conn *c, uint16_t code, std::string_view reason, aurora_metric *counter) {
    if (c->closing) return;
    AURORA_HLOG(AURORA_LOG_DEBUG, c->id, "protocol error: %u %.*s", code, static_cast<int>(reason.size()),
                reason.data());
    close_conn(c, code, reason, counter, false);
}

void Host::on_data(aurora_conn *c, ws::Opcode opcode, std::string_view piece, bool first, bool last) {
    if (c->closing) return;  // after a close, data is not processed
    const Limits &L = cfg_.limits;
    if (first) {
        c->rx_binary = opcode == ws::kBinary;
        c->rx_compressed = c->reader.compressed();
        c->rx.clear();
        c->rx_total = 0;
        c->rx_too_large = false;
        c->utf8.reset();
    }
    c->rx_total += piece.size();
    m_.bytes_in->add(static_cast<double>(piece.size()));
    if (c->rx_compressed) {  // gathered as it came, inflated when whole
        // Bounded like any message, except that a kept client context needs
        // every byte to stay in step: then up to the hard limit (opt-in).
        const size_t gather_max =
            c->deflate_params.client_context ? L.hard_max_frame_bytes : L.max_frame_bytes;
        if (c->rx_total > gather_max) {
            c->rx_too_large = true;
            c->rx.clear();
        } else {
            c->rx.append(piece);
        }
        if (last && (c->rx_too_large || inflate_message(c))) handle_message(c);
        return;
    }
    if (!c->rx_binary &&
        (!c->utf8.feed(reinterpret_cast<const unsigned char *>(piece.data()), piece.size()) ||
         (last && !c->utf8.complete()))) {
        // RFC 6455 §8.1: text that is not UTF-8 fails the connection, as soon as it shows.
        return protocol_close(c, ws::kInvalidPayload, "text message is not valid UTF-8", m_.closes_protocol);
    }
    if (c->rx_total > L.max_frame_bytes) {
        if (!c->rx_too_large) {
            c->rx_too_large = true;
            c->rx.clear();
            c->rx.shrink_to_fit();
        }
    } else if (!c->rx_binary || raw_plugins_) {  // binary is kept only for plugins that take it
        c->rx.append(piece);
    }
    if (last) handle_message(c);
}

// A whole compressed message in c->rx, inflated in place. Limits as for
// uncompressed messages: past limits.max_frame_bytes once inflated it is
// answered too_large and the connection stays; past hard_max_frame_bytes (a
// decompression bomb stops there) the connection is failed with 1009. Also
// failed: data that does not inflate, text that is not UTF-8 (1007). False
// when the connection was failed.
bool Host::inflate_message(aurora_conn *c) {
    const bool keep = c->deflate_params.client_context;
    std::unique_ptr<ws::Inflater> &inf = keep ? c->inflater : inflater_;
    if (!inf) inf = std::make_unique<ws::Inflater>();
    m_.inflate_in->add(static_cast<double>(c->rx.size()));
    const Limits &L = cfg_.limits;
    switch (inf->inflate(c->rx, L.max_frame_bytes, L.hard_max_frame_bytes, keep, inflated_)) {
    case ws::Inflater::Result::Ok: break;
    case ws::Inflater::Result::TooLarge: {
        // Refused, but inflated up to the hard limit: that work is charged
        // to the connection's frame budget, one frame per max_frame_bytes,
        // so that small messages that inflate big cost what sending the
        // bytes would (the next message over budget is rate_limited).
        const uint64_t now = uv_now(&loop_);
        uint64_t retry = 0;
        for (size_t n = inf->inflated() / std::max<size_t>(L.max_frame_bytes, 1); n > 0; --n) {
            if (!c->frame_bucket.take(L.frames, now, retry)) break;
        }
        m_.inflate_out->add(static_cast<double>(inf->inflated()));
        c->rx_too_large = true;
        c->rx.clear();
        return true;
    }
    case ws::Inflater::Result::Bomb:
        protocol_close(c, ws::kTooBig, "message too large once inflated", m_.closes_too_large);
        return false;
    case ws::Inflater::Result::Corrupt:
        protocol_close(c, ws::kInvalidPayload, "compressed data does not inflate", m_.closes_protocol);
        return false;
    }
    m_.inflate_out->add(static_cast<double>(inflated_.size()));
    if (!c->rx_binary) {
        ws::Utf8Check u;
        if (!u.feed(reinterpret_cast<const unsigned char *>(inflated_.data()), inflated_.size()) || !u.complete()) {
            protocol_close(c, ws::kInvalidPayload, "text message is not valid UTF-8", m_.closes_protocol);
            return false;
        }
    }
    c->rx.assign(inflated_);
    if (inflated_.capacity() > 64 * 1024) std::string().swap(inflated_);  // keep a big one's memory no longer
    return true;
}

void Host::on_control(aurora_conn *c, ws::Opcode opcode, std::string_view payload) {
    if (opcode == ws::kPong) return alive(c);
    if (opcode == ws::kPing) {
        if (c->closing) return;
        // Each ping its pong, in order with everything else queued. A ping
        // spends from the frame budget like any frame.
        if (!spend_budget(c, {}, {})) return;
        enqueue(c, make_frame(payload, ws::kPong));
        return;
    }
    // A close frame (§5.5.1, §7.4).
    c->peer_closed = true;
    if (c->close_queued) {  // the answer to ours
        if (c->close_written) close_handle(c);
        return;
    }
    uint16_t code = 0;
    std::string_view reason;
    bool ok = payload.empty();
    if (payload.size() >= 2) {
        code = static_cast<uint16_t>(static_cast<unsigned char>(payload[0]) << 8 | static_cast<unsigned char>(payload[1]));
        reason = payload.substr(2);
        ws::Utf8Check u;
        ok = ws::close_code_allowed(code) &&
             u.feed(reinterpret_cast<const unsigned char *>(reason.data()), reason.size()) && u.complete();
    }
    c->closing = true;
    c->outq.clear();  // the client is leaving: what it did not get, it will not read
    c->out_bytes = 0;
    if (!ok) {
        m_.closes_protocol->add(1);
        c->close_code = ws::kProtocolError;
        c->close_reason = "malformed close frame";
    } else {
        // Echo the code (an empty close is answered with an empty close).
        m_.closes_client->add(1);
        c->close_code = code;
        c->close_reason.clear();
    }
    queue_close(c);
}

// The close frame, last in the queue. close_code 0 with peer_closed: an
// empty close frame answers an empty one.
void Host::queue_close(aurora_conn *c) {
    if (c->close_queued) return;
    c->close_queued = true;
    std::string payload = c->close_code ? ws::close_payload(c->close_code, c->close_reason) : std::string();
    c->outq.push_back(make_frame(payload, ws::kClose));
    c->out_bytes += payload.size();
    c->close_deadline_ms = uv_now(&loop_) + kCloseWaitMs + 1000;  // for the write, then the answer
    out_.mark(c);
}

// Our close frame is on the wire. If the client already closed, so do we;
// otherwise send FIN and wait (briefly) for its close frame or EOF.
void Host::after_close_written(aurora_conn *c) {
    if (c->peer_closed) return close_handle(c);
    c->close_deadline_ms = uv_now(&loop_) + kCloseWaitMs;
    int rc = uv_shutdown(&c->sreq, reinterpret_cast<uv_stream_t *>(&c->tcp), [](uv_shutdown_t *, int) {});
    if (rc != 0) close_handle(c);
}

void Host::close_conn(aurora_conn *c, uint16_t code, std::string_view reason, aurora_metric *counter, bool flush) {
    if (c->closing) return;
    c->closing = true;
    c->close_code = code;
    c->close_reason.assign(reason.substr(0, 123));
    if (!flush) {
        c->outq.clear();
        c->out_bytes = 0;
    }
    if (counter) counter->add(1);
    queue_close(c);
}

// Drops the connection without a close frame (a dead socket, a heartbeat
// that went unanswered, a close that was never answered).
void Host::drop_now(aurora_conn *c) {
    c->closing = true;
    c->dropped = true;
    c->outq.clear();
    c->out_bytes = 0;
    close_handle(c);
}

void Host::close_handle(aurora_conn *c) {
    if (!c->tcp_open) return;
    c->tcp_open = false;
    uv_read_stop(reinterpret_cast<uv_stream_t *>(&c->tcp));
    uv_close(reinterpret_cast<uv_handle_t *>(&c->tcp),
             [](uv_handle_t *h) { conn_of(h)->host->on_handle_closed(conn_of(h)); });
}

// The socket is closed: the connection leaves its rooms and plugins hear of
// it, unless plugins still hold messages of it (then it waits for them).
void Host::on_handle_closed(aurora_conn *c) {
    open_sockets_.fetch_sub(1, std::memory_order_relaxed);
    c->gone = true;
    c->gone_ms = uv_now(&loop_);
    c->closing = true;
    c->outq.clear();
    c->out_bytes = 0;
    if (c->pending == 0) return finish_conn(c);
    AURORA_HLOG(AURORA_LOG_DEBUG, c->id, "closed with %u message(s) in flight: they are processed first", c->pending);
}

}  // namespace aurora::host
