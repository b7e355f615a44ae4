// The host: one libwebsockets context, the plugins, the rooms, the queues.
//
// THREAD CONTRACT (the one rule everything else follows)
//   - The service thread (the caller of Host::run) owns every socket and every
//     structure below marked [service]. Nothing else reads or writes them.
//   - Other threads reach the service thread only through post(): a command
//     queue under `queue_mu_`, followed by lws_cancel_service(); the loop
//     drains it on LWS_CALLBACK_EVENT_WAIT_CANCELLED.
//   - [main] structures are written on the main thread before the loop
//     starts (plugin loading, routes, metric registration) and only read
//     afterwards, so they need no lock.
//   - [any] members are atomics or have their own lock.
#pragma once

#include <aurora/embed.h>
#include <aurora/host_api.h>
#include <aurora/plugin.h>
// lws runs on a libuv loop the host owns (epoll underneath); libwebsockets.h
// declares its libuv API only when uv.h came first.
#include <uv.h>
#include <libwebsockets.h>

#include <atomic>
#include <chrono>
#include <type_traits>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "config.h"
#include "front_door.h"
#include "ws_deflate.h"
#include "ws_frame.h"
#include "metrics.h"
#include "plugin_library.h"

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

enum class Hook { Authenticate, OnConnect, OnDisconnect, OnJoin, OnLeave, OnMessage, Count };

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

// ---- The ABI's opaque handles, defined here. ----

struct aurora_plugin_ctx {
    aurora::host::Host *host = nullptr;
    size_t index = 0;
    std::string name;
    std::string config_json;
    std::unique_ptr<aurora::host::PluginLibrary> lib;
    aurora_plugin hooks{};  // normalised copy (see PluginLibrary)
    void *state = nullptr;
    bool initialized = false;
    bool in_init = false;  // [main] spawn/http_route/metric_* are allowed only now
    bool raw_messages = false;  // accept_raw_messages: sees what the host would refuse
    std::vector<std::unique_ptr<aurora_worker>> workers;
    aurora_metric *hook_seconds[static_cast<size_t>(aurora::host::Hook::Count)] = {};
};

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
    bool write_pending = false;  // on Host::pending_writes_
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

// An HTTP request. Created and routed on the service thread, and shared:
// the service thread holds the connection's current request
// (Host::http_reqs_), and a plugin route holds it from dispatch until its
// reply is applied (Host::in_plugin_). Whoever lets go last frees it, so a
// request the host stopped serving (the client left, a 413 or 408 replaced
// it) stays valid for the plugin thread that still reads it; its reply is
// then discarded. The plugin may read its fields from any thread until it
// calls http_reply.
struct aurora_http_req {
    lws *wsi = nullptr;  // [service] nullptr once abandoned: the reply, if any, goes nowhere
    std::string method, path, query, body, remote_addr;
    std::vector<std::pair<std::string, std::string>> headers;  // lower-case names
    std::unordered_map<std::string, std::string> query_params;
    const struct HttpRoute *route = nullptr;
    bool dispatched = false;   // [service] handed to the plugin, awaiting http_reply
    bool close_after = false;  // [service] close the connection once the reply is written
    bool head_only = false;    // [service] HEAD: the reply's headers without its body
    uint64_t body_deadline_ms = 0;  // [service] loop clock: the whole body must have arrived by then
    // [service] the reply, once known
    bool reply_ready = false;
    uint16_t status = 0;
    std::string content_type, extra_headers, reply_body;
};

struct aurora_worker {
    aurora_plugin_ctx *owner = nullptr;
    std::string name;
    aurora_worker_fn fn = nullptr;
    void *arg = nullptr;
    std::thread thread;
    std::atomic<bool> stop{false};
    std::mutex mu;
    std::condition_variable cv;
    bool woken = false;  // guarded by mu
};

struct HttpRoute {
    std::string method, path;
    bool prefix = false;
    aurora_http_handler handler = nullptr;
    void *userdata = nullptr;
    aurora_plugin_ctx *owner = nullptr;
};

namespace aurora::host {

using HttpReqPtr = std::shared_ptr<aurora_http_req>;

// A unit of work handed to the service thread.
struct Command {
    enum class Kind { Send, Broadcast, Close, Resume, HttpReply, Adopt, Call } kind;
    explicit Command(Kind k) : kind(k) {}
    aurora_conn_id conn = 0;
    std::string room;
    OutFramePtr frame;
    uint16_t code = 0;
    std::string text;  // close reason
    aurora_msg *msg = nullptr;
    aurora_verdict verdict = AURORA_DROP;
    aurora_http_req *req = nullptr;
    uint16_t status = 0;
    std::string content_type, extra_headers, body;
    Arrival arrival;  // Adopt: a connection from the front door
    void (*fn)(void *) = nullptr;  // Call
    void *arg = nullptr;
};

struct HostMetrics {
    aurora_metric *connections, *connections_total, *frames_in, *frames_out, *bytes_in, *bytes_out;
    aurora_metric *frame_errors, *queue_commands;
    aurora_metric *closes_slow, *closes_too_large, *closes_shutdown, *closes_plugin, *closes_client,
        *closes_heartbeat, *closes_other, *closes_flood, *closes_protocol;
    aurora_metric *frames_refused, *pending_refused, *conns_refused, *http_slow_bodies;
    aurora_metric *auth_rejected, *http_requests, *messages_unhandled, *pending_messages, *messages_batched;
    aurora_metric *rss, *heap_in_use, *heap_free, *heap_trims;
    aurora_metric *deflate_in, *deflate_out, *deflate_runs, *inflate_in, *inflate_out;
};

class Host {
public:
    Host() = default;
    ~Host();
    Host(const Host &) = delete;
    Host &operator=(const Host &) = delete;

    // Main thread. Loads plugins, runs init, binds. False with `error`.
    bool start(HostConfig cfg, std::string &error, int &exit_code);
    // Main thread. Like start, without listening: what --check-config does.
    bool check(HostConfig cfg, std::string &error, int &exit_code);
    int run();
    void request_stop();
    int port() const { return port_; }

    // ---- used by the host API table (host_api.cpp) ----
    const aurora_host_api *api() const;
    bool on_service_thread() const { return std::this_thread::get_id() == service_thread_.load(); }
    aurora_status post(Command cmd);  // any thread
    void note_raw_plugin() { raw_plugins_ = true; }  // [main] during init
    const HostConfig &config() const { return cfg_; }
    const std::map<std::string, std::string> &settings() const { return settings_; }
    MetricRegistry &metrics() { return registry_; }
    const HostMetrics &m() const { return m_; }
    std::vector<HttpRoute> &routes() { return routes_; }

    // Service thread.
    aurora_conn *find_conn(aurora_conn_id id);
    void enqueue(aurora_conn *c, const OutFramePtr &f);
    // `flush`: frames already queued go out before the close frame (a
    // plugin's close); otherwise they are dropped (slow consumer, shutdown).
    void close_conn(aurora_conn *c, uint16_t code, std::string_view reason, aurora_metric *counter,
                    bool flush = false);
    void broadcast_local(std::string_view room, const OutFramePtr &f, aurora_conn_id except);
    aurora_status room_join(aurora_conn *c, std::string_view room);
    aurora_status room_leave(aurora_conn *c, std::string_view room);
    bool room_has(const aurora_conn *c, std::string_view room) const;
    uint32_t room_size(std::string_view room) const;
    void resume(aurora_msg *msg, aurora_verdict verdict);
    void http_apply_reply(aurora_http_req *req, uint16_t status, std::string content_type, std::string extra,
                          std::string body);
    void *conn_data(const aurora_plugin_ctx *p, const aurora_conn *c) const;
    void set_conn_data(const aurora_plugin_ctx *p, aurora_conn *c, void *data);

    static int lws_callback(lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len);

private:
    friend struct HostTimers;
    int callback(lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len);

    // The client's address: the TCP peer, or, behind a trusted proxy, from X-Forwarded-For.
    std::string client_address(const std::string &peer, std::string_view forwarded_for) const;
    std::string client_address(lws *wsi) const;

    // WebSocket side (ws_server.cpp, ws_connection.cpp)
    int on_confirm_upgrade(lws *wsi);  // an upgrade lws saw: not a connection's first request
    void accept_websocket(Arrival &a);
    void start_conn(int fd, std::string user_id, std::string username, std::string remote_addr, bool ndjson,
                    std::optional<ws::DeflateParams> deflate);
    bool inflate_message(aurora_conn *c);
    // The frame as it goes to c: its deflated payload when c negotiated
    // compression and that pays; nullptr for the plain payload.
    const std::vector<unsigned char> *deflated_for(aurora_conn *c, OutFrame &f);
    void append_data_frame(aurora_conn *c, const std::vector<unsigned char> &payload);
    void on_read(aurora_conn *c, ssize_t nread, const uv_buf_t *buf);
    void on_data(aurora_conn *c, ws::Opcode opcode, std::string_view piece, bool first, bool last);
    void on_control(aurora_conn *c, ws::Opcode opcode, std::string_view payload);
    void protocol_close(aurora_conn *c, uint16_t code, std::string_view reason, aurora_metric *counter);
    void queue_close(aurora_conn *c);
    bool write_queued(aurora_conn *c);
    void on_write_done(aurora_conn *c, int status);
    void after_close_written(aurora_conn *c);
    void close_handle(aurora_conn *c);
    void on_handle_closed(aurora_conn *c);
    void flush_pending_writes();
    void refresh_memory_metrics();
    void trim_heap();
    void mark_pending(aurora_conn *c);
    void alive(aurora_conn *c);
    void drop_now(aurora_conn *c);
    void heartbeat_tick();
    void finish_conn(aurora_conn *c);  // rooms left, on_disconnect, forgotten
    bool spend_budget(aurora_conn *c, std::string_view type, std::string_view ref_json);
    void handle_message(aurora_conn *c);
    void handle_frame(aurora_conn *c, std::string_view text);
    // A message the host would refuse with `refusal`, handed to the plugins
    // that accept raw messages (accept_raw_messages) instead.
    void handle_raw(aurora_conn *c, std::string text, bool binary, const char *refusal, std::string message,
                    std::string refusal_ref = {});
    bool refuse_if_busy(aurora_conn *c, std::string_view ref_json);
    void run_pipeline(std::unique_ptr<aurora_msg> msg, size_t from);
    void send_error(aurora_conn *c, std::string_view code, std::string_view message, std::string_view ref_json);
    void drain_commands();
    void begin_drain();
    bool http_in_flight() const;  // requests handed to plugins whose reply is not written yet
    void maybe_finish_drain();    // draining, and nothing left to wait for: stop the loop
    void adopt(Arrival &a);

    // HTTP side (http_server.cpp)
    int on_http(lws *wsi, const char *uri);
    int on_http_body(lws *wsi, const void *in, size_t len);
    int on_http_body_done(lws *wsi);
    int on_http_writeable(lws *wsi);
    void on_http_closed(lws *wsi);
    int respond(lws *wsi, uint16_t status, std::string_view content_type, std::string body,
                std::string extra_headers = {});
    void dispatch_http(const HttpReqPtr &req);
    int serve_static(lws *wsi, std::string_view path);
    HttpReqPtr make_request(lws *wsi, std::string method, std::string path);
    void http_abandon(lws *wsi);  // the connection's current request is no longer served

    // Lifecycle and plugins (host.cpp)
    void register_host_metrics();
    bool listen(std::string &error, int &exit_code);
    bool load_plugins(std::string &error);
    void stop_workers();
    void shutdown_plugins();
    template <typename F>
    auto timed(aurora_plugin_ctx *p, Hook h, F &&f);

    HostConfig cfg_;
    std::map<std::string, std::string> settings_;  // [main]
    std::vector<std::unique_ptr<aurora_plugin_ctx>> plugins_;  // [main]
    std::vector<HttpRoute> routes_;                             // [main]
    bool raw_plugins_ = false;  // [main] some plugin accepts raw messages (read-only once serving)
    MetricRegistry registry_;                                   // [main] (values: [any])
    HostMetrics m_{};

    FrontDoor front_;
    uv_loop_t loop_{};  // the service thread's event loop; lws's handles and the WebSocket handles live on it
    bool loop_ready_ = false;
    lws_context *ctx_ = nullptr;
    lws_context *ctx_alive_ = nullptr;  // set by lws (info.pcontext): NULL once destroyed
    lws_vhost *vhost_ = nullptr;
    lws_protocols protocols_[2]{};
    lws_retry_bo_t retry_{};
    uint32_t retry_table_[1] = {1000};
    int port_ = 0;
    std::atomic<std::thread::id> service_thread_{};

    // [service]
    static constexpr size_t kCoalesceBytes = 64 * 1024;  // one write carries at most about this much
    // A closed connection waits this long for plugins to finish its PENDING
    // messages; past it, on_disconnect runs anyway and late verdicts are dropped.
    static constexpr uint64_t kGoneGraceMs = 30000;
    std::vector<aurora_conn_id> pending_writes_, flushing_;  // connections with frames to write before sleeping
    uv_prepare_t before_sleep_{};                           // runs flush_pending_writes
    uv_timer_t heartbeat_{};                                // runs heartbeat_tick every second
    uint64_t ticks_ = 0;
    size_t trimmed_at_free_ = 0;  // malloc's free total after the last trim_heap
    std::vector<unsigned char> coalesce_buf_;             // reused by write_queued
    std::vector<unsigned char> batch_buf_, batch_deflated_;  // an ndjson batch, before and after compression
    std::unique_ptr<ws::Deflater> deflater_;               // made at start when compression is enabled
    std::unique_ptr<ws::Inflater> inflater_;               // shared by clients without context takeover
    std::string inflated_;                                 // reused by inflate_message
    std::vector<char> read_buf_;                          // every read lands here, and is handled at once
    std::unordered_map<aurora_conn_id, std::unique_ptr<aurora_conn>> conns_;
    std::unordered_map<std::string, std::unordered_set<aurora_conn *>> rooms_;
    std::unordered_map<aurora_msg *, std::unique_ptr<aurora_msg>> pending_msgs_;
    std::unordered_map<lws *, HttpReqPtr> http_reqs_;           // each connection's current request
    std::unordered_map<aurora_http_req *, HttpReqPtr> in_plugin_;  // dispatched, until the reply is applied
    aurora_conn_id next_conn_id_ = 1;
    bool draining_ = false;
    bool finished_ = false;
    struct DrainTimer {  // standard layout, so lws_container_of works
        lws_sorted_usec_list_t sul;
        Host *host;
    } drain_timer_{};

    // [any]
    std::mutex queue_mu_;
    std::vector<Command> queue_;  // guarded by queue_mu_
    bool queue_open_ = true;      // guarded by queue_mu_; false once the context is going away
    std::atomic<bool> stop_requested_{false};
    std::atomic<size_t> open_sockets_{0};  // adopted sockets not destroyed yet (WebSocket and HTTP)
};

// Runs one hook and records its duration in aurora_hook_duration_seconds.
template <typename F>
auto Host::timed(aurora_plugin_ctx *p, Hook h, F &&f) {
    auto t0 = std::chrono::steady_clock::now();
    auto finish = [&] {
        std::chrono::duration<double> d = std::chrono::steady_clock::now() - t0;
        if (aurora_metric *m = p->hook_seconds[static_cast<size_t>(h)]) m->observe(d.count());
    };
    if constexpr (std::is_void_v<decltype(f())>) {
        f();
        finish();
    } else {
        auto r = f();
        finish();
        return r;
    }
}

}  // namespace aurora::host

// The embedding API's handle.
struct aurora_host {
    aurora::host::Host impl;
};
