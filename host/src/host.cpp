// Host lifecycle: plugins in, lws context up, service loop, drain, teardown.
// Also the C embedding API (aurora/embed.h).
#include "host.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>

#include "log.h"

namespace aurora::host {

OutFramePtr make_frame(std::string_view payload, ws::Opcode opcode) {
    auto f = std::make_shared<OutFrame>();
    f->buf.assign(payload.begin(), payload.end());
    f->opcode = opcode;
    return f;
}

namespace {

void lws_log_emit(int level, const char *line) {
    size_t n = std::strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) --n;
    aurora_log_level lv = (level & LLL_ERR) ? AURORA_LOG_ERROR : (level & LLL_WARN) ? AURORA_LOG_WARN
                                                                                      : AURORA_LOG_DEBUG;
    if (Logger::instance().enabled(lv)) Logger::instance().write(lv, "lws", 0, std::string_view(line, n));
}

}  // namespace

struct HostTimers {
    static void drain_deadline(lws_sorted_usec_list_t *sul) {
        Host *h = lws_container_of(sul, Host::DrainTimer, sul)->host;
        if (!h->finished_) {
            AURORA_HLOG(AURORA_LOG_WARN, 0, "shutdown grace of %d ms over with %zu connection(s) still open",
                        h->cfg_.shutdown_grace_ms, h->conns_.size());
            h->finished_ = true;
            lws_cancel_service(h->ctx_);  // timers run before lws computes its wait: make it return now
        }
    }
};

Host::~Host() {
    front_.stop();
    // From now on post() refuses and never touches ctx_. What is still
    // queued: calls run (the API promises it), adoptions close.
    for (Command &cmd : commands_.close()) {
        if (cmd.kind == Command::Kind::Adopt && cmd.arrival.fd >= 0) ::close(cmd.arrival.fd);
        if (cmd.kind == Command::Kind::Call) cmd.fn(cmd.arg);
    }
    plugins_.stop_workers();
    loop_io_.end();  // no plugin descriptor or timer callback from here on
    if (serving_) {
        // Nothing is written directly any more: what closes now closes.
        for (auto &[id, c] : conns_) close_handle(c.get());
        out_.stop();
        uv_timer_stop(&heartbeat_);
        uv_close(reinterpret_cast<uv_handle_t *>(&heartbeat_), nullptr);
    }
    if (ctx_) {
        // Closes what is still open; on_leave/on_disconnect hooks still run.
        // On a foreign loop the destruction finishes in handle-close
        // callbacks: the loop runs until lws has closed every handle.
        // When the loop has nothing left and the context is still there,
        // lws_context_destroy is called again for its last stage (as lws's
        // foreign-loop example does after its loop returns).
        lws_context_destroy(ctx_);
        for (int stage = 0; ctx_alive_ && stage < 4; ++stage) {
            while (ctx_alive_ && uv_run(&loop_, UV_RUN_ONCE) != 0) {
            }
            if (ctx_alive_) lws_context_destroy(ctx_alive_);
        }
        if (ctx_alive_) AURORA_HLOG(AURORA_LOG_WARN, 0, "libwebsockets context not released at shutdown");
        ctx_ = nullptr;
    }
    // Connections that closed with messages still held by plugins: the
    // plugin threads are joined, so no verdict will come any more.
    while (!conns_.empty()) finish_conn(conns_.begin()->second.get());
    if (loop_ready_) {
        uv_run(&loop_, UV_RUN_NOWAIT);  // close callbacks still pending
        if (uv_loop_close(&loop_) != 0)
            AURORA_HLOG(AURORA_LOG_WARN, 0, "event loop closed with handles still open");
        loop_ready_ = false;
    }
    plugins_.shutdown();
    loop_io_.clear();  // what the plugins did not stop
    plugins_.clear();  // dlclose
}

bool Host::check(HostConfig cfg, std::string &error, int &exit_code) {
    cfg_ = std::move(cfg);
    settings_ = cfg_.settings();
    Logger::instance().configure(cfg_.log_level, cfg_.log_format);
    m_.register_in(registry_);
    memory_.register_metrics(registry_);
    commands_.count_into(m_.queue_commands);
    if (int rc = uv_loop_init(&loop_); rc != 0) {
        error = std::string("cannot create the event loop: ") + uv_strerror(rc);
        exit_code = AURORA_HOST_EXIT_FATAL;
        return false;
    }
    loop_ready_ = true;
    loop_io_.start(&loop_);
    if (!plugins_.load(cfg_.plugins, this, api(), registry_, error)) {
        http_.router().clear();  // what the plugins routed before one failed
        exit_code = AURORA_HOST_EXIT_BAD_CONFIG;
        return false;
    }
    return true;  // the destructor shuts the plugins down again
}

bool Host::start(HostConfig cfg, std::string &error, int &exit_code) {
    if (!check(std::move(cfg), error, exit_code)) return false;
    return listen(error, exit_code);
}

bool Host::listen(std::string &error, int &exit_code) {
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit);

    retry_.retry_ms_table = retry_table_;
    retry_.retry_ms_table_count = 1;
    retry_.conceal_count = 1;
    // lws's own keep-alive ("validity") is off (0/0): it keeps one timer per
    // connection in a sorted list, and each (re)arming walks that list, so
    // every connect and every received frame cost O(connections). The host's
    // heartbeat is one timer for all of them (heartbeat_tick).
    retry_.secs_since_valid_ping = 0;
    retry_.secs_since_valid_hangup = 0;

    // lws serves HTTP only: WebSocket upgrades never reach it (front_door.h).
    protocols_[0].name = "aurora-http";
    protocols_[0].callback = &Host::lws_callback;
    protocols_[0].per_session_data_size = 0;
    protocols_[0].rx_buffer_size = 4096;
    protocols_[1] = {};  // terminator
    read_buf_.resize(64 * 1024);

    if (!front_.listen(cfg_.listen_host, cfg_.listen_port, cfg_.workers > 1, error)) {
        exit_code = AURORA_HOST_EXIT_FATAL;
        return false;
    }
    lws_context_creation_info info;
    std::memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER;  // the front door listens and hands sockets over
    info.protocols = protocols_;
    info.user = this;
    info.vhost_name = "aurora";
    info.max_http_header_data = 16 * 1024;  // JWTs travel in headers
    info.pt_serv_buf_size = 64 * 1024;
    info.retry_and_idle_policy = &retry_;
    info.timeout_secs = 10;
    // lws's own loop is poll(), which walks every descriptor on every
    // wake-up: O(connections) per event. On libuv (epoll) the cost follows
    // the sockets that are ready, not the ones that are open.
    serving_ = true;  // the loop exists since check(): the plugins' inits may watch descriptors on it
    out_.start(&loop_);
    uv_timer_init(&loop_, &heartbeat_);
    heartbeat_.data = this;
    uv_timer_start(&heartbeat_, [](uv_timer_t *t) { static_cast<Host *>(t->data)->heartbeat_tick(); }, 1000, 1000);
    void *loops[1] = {&loop_};  // read during lws_create_context only
    info.foreign_loops = loops;
    info.options = LWS_SERVER_OPTION_LIBUV;
    info.pcontext = &ctx_alive_;  // lws clears it when the context is gone

    ctx_ = lws_create_context(&info);
    ctx_alive_ = ctx_;
    if (!ctx_) {
        error = "cannot create the libwebsockets context (see the lws lines above; its libuv event-loop "
                "plugin comes with Debian's libwebsockets-evlib-uv package)";
        exit_code = AURORA_HOST_EXIT_FATAL;
        return false;
    }
    vhost_ = lws_get_vhost_by_name(ctx_, "aurora");
    commands_.attach(ctx_);
    port_ = front_.port();
    front_.start(
        [this](Arrival a) {
            int fd = a.fd;
            Command cmd{Command::Kind::Adopt};
            cmd.arrival = std::move(a);
            if (post(std::move(cmd)) != AURORA_OK) ::close(fd);
        },
        16 * 1024, std::chrono::seconds(10), [this] { return open_sockets_.load(std::memory_order_relaxed); },
        cfg_.limits.max_connections, [this] { m_.conns_refused->add(1); });
    AURORA_HLOG(AURORA_LOG_INFO, 0, "listening on %s:%d with %zu plugin(s), ABI %d.%d", cfg_.listen_host.c_str(),
                port_, plugins_.size(), AURORA_ABI_MAJOR, AURORA_ABI_MINOR);
    return true;
}

int Host::run() {
    service_thread_ = std::this_thread::get_id();
    if (stop_requested_) begin_drain();
    while (!finished_) {
        if (uv_run(&loop_, UV_RUN_ONCE) == 0) {  // lws always keeps handles open while it runs
            AURORA_HLOG(AURORA_LOG_ERROR, 0, "event loop has nothing left to wait for");
            break;
        }
    }
    // Plugin threads stop with the queue still open, so that what they answer
    // on their way out (HTTP replies, resumed messages) is applied and
    // flushed for a short, bounded time before the context goes away.
    plugins_.stop_workers();
    drain_commands();
    loop_io_.end();  // the plugins' descriptors and timers: nothing runs on them after the loop
    auto flush_until = std::chrono::steady_clock::now() +
                       std::chrono::milliseconds(std::min(cfg_.shutdown_grace_ms, 500));
    while (http_.in_flight() && std::chrono::steady_clock::now() < flush_until) {
        if (uv_run(&loop_, UV_RUN_ONCE) == 0) break;
    }
    commands_.refuse();  // what is left runs (calls) or closes (sockets) in ~Host
    AURORA_HLOG(AURORA_LOG_INFO, 0, "stopped");
    return AURORA_HOST_EXIT_OK;
}

void Host::maybe_finish_drain() {
    if (draining_ && !finished_ && conns_.empty() && !http_.in_flight()) {
        finished_ = true;
        lws_cancel_service(ctx_);
    }
}

void Host::request_stop() {
    stop_requested_ = true;
    commands_.wake();
}

void Host::begin_drain() {
    if (draining_) return;
    draining_ = true;
    front_.stop();  // stop accepting
    AURORA_HLOG(AURORA_LOG_INFO, 0, "shutting down: closing %zu connection(s) with 1001", conns_.size());
    for (auto &[id, c] : conns_) close_conn(c.get(), LWS_CLOSE_STATUS_GOINGAWAY, "server shutting down",
                                            m_.closes_shutdown);
    drain_timer_.host = this;
    maybe_finish_drain();
    if (finished_) return;
    lws_sul_schedule(ctx_, 0, &drain_timer_.sul, HostTimers::drain_deadline,
                     static_cast<lws_usec_t>(cfg_.shutdown_grace_ms) * LWS_US_PER_MS);
}

void Host::drain_commands() {
    for (Command &cmd : commands_.take()) {
        switch (cmd.kind) {
        case Command::Kind::Send:
            if (aurora_conn *c = find_conn(cmd.conn)) enqueue(c, cmd.frame);
            break;
        case Command::Kind::Broadcast: broadcast_local(cmd.room, cmd.frame, cmd.conn); break;
        case Command::Kind::Close:
            if (aurora_conn *c = find_conn(cmd.conn)) close_conn(c, cmd.code, cmd.text, m_.closes_plugin, true);
            break;
        case Command::Kind::Resume: resume(cmd.msg, cmd.verdict); break;
        case Command::Kind::HttpReply:
            http_.apply_reply(cmd.req, cmd.status, std::move(cmd.content_type), std::move(cmd.extra_headers),
                             std::move(cmd.body));
            break;
        case Command::Kind::Call: cmd.fn(cmd.arg); break;
        case Command::Kind::Adopt:
            if (draining_) {
                ::close(cmd.arrival.fd);
            } else {
                adopt(cmd.arrival);
            }
            break;
        }
    }
    if (stop_requested_ && !draining_) begin_drain();
}

// A connection from the front door: a WebSocket upgrade the host serves
// itself, or an HTTP request for lws (nothing of it read yet).
void Host::adopt(Arrival &a) {
    if (a.upgrade) return accept_websocket(a);
    lws *wsi = lws_adopt_socket(ctx_, a.fd);
    if (!wsi) {
        AURORA_HLOG(AURORA_LOG_WARN, 0, "libwebsockets refused an accepted connection");  // it closed the fd
        return;
    }
    lws_set_opaque_user_data(wsi, &open_sockets_);  // marks it as counted: see LWS_CALLBACK_WSI_DESTROY
    open_sockets_.fetch_add(1, std::memory_order_relaxed);
}

std::string Host::render_metrics() {
    memory_.refresh();
    return registry_.render();
}

int Host::lws_callback(lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    lws_context *ctx = lws_get_context(wsi);
    auto *self = ctx ? static_cast<Host *>(lws_context_user(ctx)) : nullptr;
    if (!self) return lws_callback_http_dummy(wsi, reason, user, in, len);
    return self->callback(wsi, reason, user, in, len);
}

int Host::callback(lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED: drain_commands(); return 0;
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: return on_confirm_upgrade(wsi);
    case LWS_CALLBACK_HTTP: return http_.on_request(wsi, static_cast<const char *>(in));
    case LWS_CALLBACK_HTTP_BODY: return http_.on_body(wsi, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION: return http_.on_body_done(wsi);
    case LWS_CALLBACK_HTTP_WRITEABLE: return http_.on_writeable(wsi);
    case LWS_CALLBACK_HTTP_FILE_COMPLETION:
        if (lws_http_transaction_completed(wsi)) return -1;
        return 0;
    case LWS_CALLBACK_CLOSED_HTTP: http_.on_closed(wsi); return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        if (lws_get_opaque_user_data(wsi) == &open_sockets_) {
            lws_set_opaque_user_data(wsi, nullptr);
            open_sockets_.fetch_sub(1, std::memory_order_relaxed);
        }
        http_.on_closed(wsi);
        return 0;
    default: break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

}  // namespace aurora::host

// ---- The embedding API (aurora/embed.h) ----

using aurora::host::Host;

extern "C" {

AURORA_EXPORT aurora_host *aurora_host_create(const char *config_json, size_t config_len, char *err,
                                              size_t err_len, int *exit_code) {
    auto report = [&](const std::string &msg, int code) -> aurora_host * {
        if (err && err_len) {
            std::snprintf(err, err_len, "%s", msg.c_str());
        }
        if (exit_code) *exit_code = code;
        return nullptr;
    };
    if (!config_json) return report("config is NULL", AURORA_HOST_EXIT_BAD_CONFIG);
    try {
        std::string error;
        auto cfg = aurora::host::parse_config(std::string(config_json, config_len), "", error);
        if (!cfg) return report(error, AURORA_HOST_EXIT_BAD_CONFIG);
        auto h = std::make_unique<aurora_host>();
        int code = AURORA_HOST_EXIT_FATAL;
        if (!h->impl.start(std::move(*cfg), error, code)) return report(error, code);
        if (exit_code) *exit_code = AURORA_HOST_EXIT_OK;
        return h.release();  // ownership passes to the caller: aurora_host_destroy
    } catch (const std::exception &e) {
        return report(std::string("cannot create host: ") + e.what(), AURORA_HOST_EXIT_FATAL);
    }
}

AURORA_EXPORT int aurora_host_port(const aurora_host *host) { return host ? host->impl.port() : -1; }

AURORA_EXPORT int aurora_host_run(aurora_host *host) {
    if (!host) return AURORA_HOST_EXIT_FATAL;
    try {
        return host->impl.run();
    } catch (const std::exception &e) {
        aurora::host::hlog(AURORA_LOG_ERROR, 0, "fatal: %s", e.what());
        return AURORA_HOST_EXIT_FATAL;
    }
}

AURORA_EXPORT void aurora_host_stop(aurora_host *host) {
    if (host) host->impl.request_stop();
}

AURORA_EXPORT void aurora_host_destroy(aurora_host *host) {
    std::unique_ptr<aurora_host> owned(host);  // takes back what aurora_host_create released
}

AURORA_EXPORT const char *aurora_host_version(void) { return AURORA_HOST_VERSION; }

}  // extern "C"
