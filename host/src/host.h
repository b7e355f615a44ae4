// The host: the composition of its parts, and the connections' life.
//
//   main thread ─ start: config, PluginSet::load (init), FrontDoor::listen
//   front door thread(s) ─ accept, read the head ─┐
//   plugin threads (api spawn) ────────────────────┤ CommandQueue::post
//                                                  ▼
//   service thread ─ Host::run: one libuv loop (lws's HTTP on it too)
//     Host          connections: handshake, reading, closing, heartbeat,
//                   the message pipeline, rooms' hooks and limits
//     Rooms         membership                  (rooms.h)
//     Outbound      queues onto sockets         (outbound.h)
//     LoopIo        plugins' descriptors, timers, before-sleep calls (loop_io.h)
//     HttpServer    host paths, plugin routes   (http_server.h, http_router.h)
//     PluginSet     the hooks over all plugins  (plugin_set.h)
//     ProcessMemory memory gauges, heap trim    (process_memory.h)
//
// THREAD CONTRACT (the one rule everything else follows)
//   - The service thread (the caller of Host::run) owns every socket and every
//     structure below marked [service]. Nothing else reads or writes them.
//   - Other threads reach the service thread only through post() (the
//     CommandQueue); the loop drains it on LWS_CALLBACK_EVENT_WAIT_CANCELLED.
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
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "command_queue.h"
#include "config.h"
#include "conn.h"
#include "front_door.h"
#include "host_metrics.h"
#include "http_server.h"
#include "loop_io.h"
#include "metrics.h"
#include "outbound.h"
#include "plugin_set.h"
#include "process_memory.h"
#include "rooms.h"

namespace aurora::host {

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
    void request_stop();  // any thread
    int port() const { return port_; }

    // ---- for the API table (host_api.cpp) and the host's parts ----
    const aurora_host_api *api() const;
    bool on_service_thread() const { return std::this_thread::get_id() == service_thread_.load(); }
    aurora_status post(Command cmd) { return commands_.post(std::move(cmd)); }  // any thread
    void note_raw_plugin() { raw_plugins_ = true; }  // [main] during init
    const HostConfig &config() const { return cfg_; }
    const std::map<std::string, std::string> &settings() const { return settings_; }
    MetricRegistry &metrics() { return registry_; }
    const HostMetrics &m() const { return m_; }
    PluginSet &plugins() { return plugins_; }
    HttpServer &http() { return http_; }
    Outbound &outbound() { return out_; }
    LoopIo &loop_io() { return loop_io_; }

    // Service thread.
    bool draining() const { return draining_; }
    uint64_t now_ms() const { return uv_now(&loop_); }  // the loop clock
    std::string render_metrics();
    void maybe_finish_drain();  // draining, and nothing left to wait for: stop the loop
    // The client's address: the TCP peer, or, behind a trusted proxy, from X-Forwarded-For.
    std::string client_address(lws *wsi) const;
    aurora_conn *find_conn(aurora_conn_id id);
    void enqueue(aurora_conn *c, const OutFramePtr &f);
    // `flush`: frames already queued go out before the close frame (a
    // plugin's close, a flood); otherwise they are dropped (slow consumer,
    // shutdown).
    void close_conn(aurora_conn *c, uint16_t code, std::string_view reason, aurora_metric *counter,
                    bool flush = false);
    void drop_now(aurora_conn *c);  // closed without a close frame, counted by its reason
    void after_close_written(aurora_conn *c);
    void broadcast_local(std::string_view room, const OutFramePtr &f, aurora_conn_id except);
    aurora_status room_join(aurora_conn *c, std::string_view room);
    aurora_status room_leave(aurora_conn *c, std::string_view room);
    bool room_has(const aurora_conn *c, std::string_view room) const { return rooms_.has(c, room); }
    uint32_t room_size(std::string_view room) const { return rooms_.size(room); }
    void resume(aurora_msg *msg, aurora_verdict verdict);
    void *conn_data(const aurora_plugin_ctx *p, const aurora_conn *c) const;
    void set_conn_data(const aurora_plugin_ctx *p, aurora_conn *c, void *data);

    static int lws_callback(lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len);

private:
    friend struct HostTimers;
    int callback(lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len);
    std::string client_address(const std::string &peer, std::string_view forwarded_for) const;

    // Lifecycle (host.cpp)
    bool listen(std::string &error, int &exit_code);
    void drain_commands();
    void begin_drain();
    void adopt(Arrival &a);

    // Connections: the handshake, the heartbeat, the rooms (ws_server.cpp)
    int on_confirm_upgrade(lws *wsi);  // an upgrade lws saw: not a connection's first request
    void accept_websocket(Arrival &a);
    void start_conn(int fd, std::string user_id, std::string username, std::string remote_addr, bool ndjson,
                    std::optional<ws::DeflateParams> deflate);
    void finish_conn(aurora_conn *c);  // rooms left, on_disconnect, forgotten
    void alive(aurora_conn *c);
    void heartbeat_tick();

    // Reading and closing (ws_connection.cpp)
    void on_read(aurora_conn *c, ssize_t nread, const uv_buf_t *buf);
    void on_data(aurora_conn *c, ws::Opcode opcode, std::string_view piece, bool first, bool last);
    void on_control(aurora_conn *c, ws::Opcode opcode, std::string_view payload);
    bool inflate_message(aurora_conn *c);
    void protocol_close(aurora_conn *c, uint16_t code, std::string_view reason, aurora_metric *counter);
    void queue_close(aurora_conn *c);
    void close_handle(aurora_conn *c);
    void on_handle_closed(aurora_conn *c);

    // The message pipeline (message_pipeline.cpp)
    void handle_message(aurora_conn *c);
    void handle_frame(aurora_conn *c, std::string_view text);
    // A message the host would refuse with `refusal`, handed to the plugins
    // that accept raw messages (accept_raw_messages) instead.
    void handle_raw(aurora_conn *c, std::string text, bool binary, const char *refusal, std::string message,
                    std::string refusal_ref = {});
    bool spend_budget(aurora_conn *c, std::string_view type, std::string_view ref_json);
    bool refuse_if_busy(aurora_conn *c, std::string_view ref_json);
    void run_pipeline(std::unique_ptr<aurora_msg> msg, size_t from);
    void send_error(aurora_conn *c, std::string_view code, std::string_view message, std::string_view ref_json);

    HostConfig cfg_;
    std::map<std::string, std::string> settings_;  // [main]
    PluginSet plugins_;                            // [main] loaded; hooks [service]
    bool raw_plugins_ = false;  // [main] some plugin accepts raw messages (read-only once serving)
    MetricRegistry registry_;   // [main] (values: [any])
    HostMetrics m_{};
    ProcessMemory memory_;

    FrontDoor front_;
    uv_loop_t loop_{};  // the service thread's event loop; lws's handles and the WebSocket handles live on it
    bool loop_ready_ = false;  // made in check(), before the plugins' inits
    bool serving_ = false;     // listen() started the host's own handles on it
    LoopIo loop_io_;           // [service] ([main] while the loop does not run)
    lws_context *ctx_ = nullptr;
    lws_context *ctx_alive_ = nullptr;  // set by lws (info.pcontext): NULL once destroyed
    lws_vhost *vhost_ = nullptr;
    lws_protocols protocols_[2]{};
    lws_retry_bo_t retry_{};
    uint32_t retry_table_[1] = {1000};
    int port_ = 0;
    std::atomic<std::thread::id> service_thread_{};

    // [service]
    // A closed connection waits this long for plugins to finish its PENDING
    // messages; past it, on_disconnect runs anyway and late verdicts are dropped.
    static constexpr uint64_t kGoneGraceMs = 30000;
    HttpServer http_{*this};
    Outbound out_{*this};
    Rooms rooms_;
    uv_timer_t heartbeat_{};                 // runs heartbeat_tick every second
    uint64_t ticks_ = 0;
    std::unique_ptr<ws::Inflater> inflater_;  // shared by clients without context takeover
    std::string inflated_;                    // reused by inflate_message
    std::vector<char> read_buf_;              // every read lands here, and is handled at once
    std::unordered_map<aurora_conn_id, std::unique_ptr<aurora_conn>> conns_;
    std::unordered_map<aurora_msg *, std::unique_ptr<aurora_msg>> pending_msgs_;
    aurora_conn_id next_conn_id_ = 1;
    bool draining_ = false;
    bool finished_ = false;
    struct DrainTimer {  // standard layout, so lws_container_of works
        lws_sorted_usec_list_t sul;
        Host *host;
    } drain_timer_{};

    // [any]
    CommandQueue commands_;
    std::atomic<bool> stop_requested_{false};
    std::atomic<size_t> open_sockets_{0};  // adopted sockets not destroyed yet (WebSocket and HTTP)
};

}  // namespace aurora::host

// The embedding API's handle.
struct aurora_host {
    aurora::host::Host impl;
};
