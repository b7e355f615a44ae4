// A WebSocket connection and what travels on it: the outbound frames, their
// queue, the frame budgets, the upgrade request and an inbound message.
//
// THREADS: [service]. A connection, its queue and its messages are touched
// only on the service thread, except an aurora_msg held PENDING by a plugin
// (the plugin owns it until msg_resume).
#pragma once

#include <aurora/host_api.h>
// libuv before anything that includes libwebsockets.h (see host.h).
#include <uv.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"
#include "http_head.h"
#include "ws_deflate.h"
#include "ws_frame.h"

namespace aurora::host {
class Host;

// An outbound frame's payload, serialised once and shared by every
// recipient's queue (broadcast). The header is written in front of it at
// write time (ws::write_header); only the service thread writes.
struct OutFrame {
    std::vector<unsigned char> buf;
    ws::Opcode opcode = ws::kText;
    // permessage-deflate: the payload compressed with a window of
    // `deflated_bits`, made at the first write to a connection that
    // negotiated compression and reused for every other (a broadcast is
    // compressed once). `deflated_bits` set and `deflated` empty: compressing
    // did not make it smaller. Service thread.
    std::vector<unsigned char> deflated;
    uint8_t deflated_bits = 0;
    size_t len() const { return buf.size(); }
    unsigned char *data() { return buf.data(); }
};
using OutFramePtr = std::shared_ptr<OutFrame>;
OutFramePtr make_frame(std::string_view payload, ws::Opcode opcode = ws::kText);

// A token bucket (limits.frames and limits.frame_budgets), on the loop clock.
struct TokenBucket {
    float tokens = -1;  // below zero: not started (full)
    uint64_t last_ms = 0;
    // Takes one token; false with the wait until one is there.
    bool take(const Budget &b, uint64_t now_ms, uint64_t &retry_after_ms);
};

// A connection's outbound FIFO. Not std::deque: libstdc++'s deque allocates
// ~600 bytes as soon as it exists, for every idle connection. This costs
// nothing until the first frame and reuses its storage afterwards.
class FrameQueue {
public:
    bool empty() const { return head_ == items_.size(); }
    size_t size() const { return items_.size() - head_; }
    void push_back(OutFramePtr f) { items_.push_back(std::move(f)); }
    const OutFramePtr &front() const { return items_[head_]; }
    const OutFramePtr &at(size_t i) const { return items_[head_ + i]; }
    OutFramePtr pop_front() {
        OutFramePtr f = std::move(items_[head_++]);
        if (head_ == items_.size()) {
            items_.clear();
            head_ = 0;
        } else if (head_ >= 1024 && head_ * 2 >= items_.size()) {
            items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
            head_ = 0;
        }
        return f;
    }
    void clear() {
        items_.clear();
        items_.shrink_to_fit();
        head_ = 0;
    }

private:
    std::vector<OutFramePtr> items_;
    size_t head_ = 0;
};
}  // namespace aurora::host

// [service] A WebSocket connection. The host frames it itself (ws_frame.h)
// on a libuv TCP handle of the host's loop; lws never sees it.
struct aurora_conn {
    aurora_conn_id id = 0;
    aurora::host::Host *host = nullptr;
    uv_tcp_t tcp{};        // the socket; this struct lives until its close callback
    bool tcp_open = false;  // initialised and not closing
    std::string user_id, username, remote_addr;
    // Outbound queue, bounded by limits.send_queue_max_{bytes,frames}.
    aurora::host::FrameQueue outq;
    size_t out_bytes = 0;
    // Inbound: the frame reader, and the message being assembled.
    aurora::host::ws::FrameReader reader{0};
    aurora::host::ws::Utf8Check utf8;
    std::string rx;
    size_t rx_total = 0;
    bool rx_too_large = false;
    bool rx_binary = false;
    bool rx_compressed = false;  // the message in rx is deflated (RSV1)
    // permessage-deflate, when negotiated (ws_deflate.h). `inflater` only
    // when the client keeps its context between messages.
    bool deflate = false;
    aurora::host::ws::DeflateParams deflate_params;
    std::unique_ptr<aurora::host::ws::Inflater> inflater;
    // Closing: no input is processed any more, nothing is queued but the
    // close frame, which goes last. Then the write side is shut down and the
    // socket closed when the peer's close (or EOF) comes, or at close_deadline_ms.
    bool closing = false;
    bool close_queued = false;   // our close frame is in outq (or written)
    bool close_written = false;  // ... and on the wire
    bool peer_closed = false;    // the client's close frame came
    uint16_t close_code = 0;
    std::string close_reason;
    uint64_t close_deadline_ms = 0;
    // Writing: one uv_write at a time for what a non-blocking write left.
    bool writing = false;
    uv_write_t wreq{};
    uv_shutdown_t sreq{};
    std::vector<unsigned char> wbuf;
    std::vector<std::string> rooms;
    std::vector<void *> plugin_data;  // one slot per plugin
    // Subprotocol "aurora.ndjson": frames waiting together leave as ONE text
    // frame holding one message per line (newline-delimited JSON).
    bool ndjson = false;
    bool write_pending = false;  // on Outbound::pending_
    // Heartbeat (Host::heartbeat_tick), loop-clock ms: the last frame or pong
    // from the peer, and the ping it owes an answer to (0: none).
    uint64_t last_seen_ms = 0;
    uint64_t ping_sent_ms = 0;
    bool ping_due = false;  // a ping goes out with the next write
    bool dropped = false;   // Host::drop_now: closed without a close frame, counted by its reason
    // Messages of this connection held PENDING by plugins. A connection whose
    // socket closes while some are still held stays here, `gone` (no socket,
    // no reads, no writes), until they have been through the whole pipeline:
    // what the server received is processed whether or not its sender waits
    // for the answer. on_leave/on_disconnect run after that.
    uint32_t pending = 0;
    bool gone = false;
    uint64_t gone_ms = 0;
    // Frame budgets (limits.frames, limits.frame_budgets): token buckets,
    // the per-type ones allocated at the first frame of a budgeted type.
    aurora::host::TokenBucket frame_bucket;
    std::unique_ptr<aurora::host::TokenBucket[]> type_buckets;
    uint32_t refused_in_row = 0;  // frames refused since the last one accepted
};

// [service] The upgrade request during authenticate.
struct aurora_handshake {
    const aurora::host::HttpHead *head = nullptr;
    std::string path, token, remote_addr;
    mutable std::deque<std::string> answers;  // keeps returned strings alive during the call
};

// An inbound message in the pipeline. [service] while in the pipeline; owned
// by one plugin while PENDING.
struct aurora_msg {
    aurora::host::Host *host = nullptr;
    aurora_conn_id conn = 0;
    std::string payload;
    std::string type;
    std::string ref_json;  // the raw JSON of "ref", or empty
    std::string reply;
    size_t next_plugin = 0;
    // A raw message (accept_raw_messages): not a JSON object frame, or
    // binary. Only plugins that asked see it; if none answers, the host
    // sends the error it would have sent (`refusal`, `refusal_message`).
    bool raw = false;
    bool binary = false;
    const char *refusal = nullptr;
    std::string refusal_message;
    std::string refusal_ref;  // the ref the refused frame had (msg_ref stays empty)
};

