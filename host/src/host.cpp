// Host lifecycle: plugins in, lws context up, service loop, drain, teardown.
// Also the C embedding API (aurora/embed.h).
#include "host.h"

#include <malloc.h>
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

const char *hook_name(Hook h) {
    switch (h) {
    case Hook::Authenticate: return "authenticate";
    case Hook::OnConnect: return "on_connect";
    case Hook::OnDisconnect: return "on_disconnect";
    case Hook::OnJoin: return "on_join";
    case Hook::OnLeave: return "on_leave";
    case Hook::OnMessage: return "on_message";
    default: return "unknown";
    }
}

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
    {
        std::lock_guard lock(queue_mu_);
        queue_open_ = false;  // from now on post() refuses and never touches ctx_
    }
    // What is still queued: calls run (the API promises it), adoptions close.
    std::vector<Command> left;
    {
        std::lock_guard lock(queue_mu_);
        left.swap(queue_);
    }
    for (Command &cmd : left) {
        if (cmd.kind == Command::Kind::Adopt && cmd.arrival.fd >= 0) ::close(cmd.arrival.fd);
        if (cmd.kind == Command::Kind::Call) cmd.fn(cmd.arg);
    }
    stop_workers();
    if (loop_ready_) {
        // Nothing is written directly any more: what closes now closes.
        for (auto &[id, c] : conns_) close_handle(c.get());
        uv_prepare_stop(&before_sleep_);
        uv_close(reinterpret_cast<uv_handle_t *>(&before_sleep_), nullptr);
        uv_timer_stop(&heartbeat_);
        uv_close(reinterpret_cast<uv_handle_t *>(&heartbeat_), nullptr);
        pending_writes_.clear();
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
    shutdown_plugins();
    plugins_.clear();  // dlclose
}

bool Host::check(HostConfig cfg, std::string &error, int &exit_code) {
    cfg_ = std::move(cfg);
    settings_ = cfg_.settings();
    Logger::instance().configure(cfg_.log_level, cfg_.log_format);
    register_host_metrics();
    if (!load_plugins(error)) {
        exit_code = AURORA_HOST_EXIT_BAD_CONFIG;
        return false;
    }
    return true;  // the destructor shuts the plugins down again
}

bool Host::start(HostConfig cfg, std::string &error, int &exit_code) {
    if (!check(std::move(cfg), error, exit_code)) return false;
    return listen(error, exit_code);
}

void Host::register_host_metrics() {
    auto &R = registry_;
    m_.connections = R.add(MetricKind::Gauge, "aurora_connections", "Open WebSocket connections", "");
    m_.connections_total = R.add(MetricKind::Counter, "aurora_connections_accepted_total", "WebSocket connections accepted", "");
    m_.frames_in = R.add(MetricKind::Counter, "aurora_frames_in_total", "Text frames received", "");
    m_.frames_out = R.add(MetricKind::Counter, "aurora_frames_out_total", "Frames written to clients", "");
    m_.bytes_in = R.add(MetricKind::Counter, "aurora_bytes_in_total", "Payload bytes received", "");
    m_.bytes_out = R.add(MetricKind::Counter, "aurora_bytes_out_total", "Payload bytes written", "");
    m_.frame_errors = R.add(MetricKind::Counter, "aurora_frame_errors_total", "Malformed frames answered with an error", "");
    m_.queue_commands = R.add(MetricKind::Counter, "aurora_cross_thread_commands_total",
                              "Commands handed to the service thread by other threads", "");
    const char *closes_help = "WebSocket connections closed, by reason";
    m_.closes_slow = R.add(MetricKind::Counter, "aurora_closes_total", closes_help, "reason=\"slow_consumer\"");
    m_.closes_too_large = R.add(MetricKind::Counter, "aurora_closes_total", closes_help, "reason=\"frame_too_large\"");
    m_.closes_shutdown = R.add(MetricKind::Counter, "aurora_closes_total", closes_help, "reason=\"shutdown\"");
    m_.closes_plugin = R.add(MetricKind::Counter, "aurora_closes_total", closes_help, "reason=\"plugin\"");
    m_.closes_client = R.add(MetricKind::Counter, "aurora_closes_total", closes_help, "reason=\"client\"");
    m_.closes_heartbeat = R.add(MetricKind::Counter, "aurora_closes_total", closes_help, "reason=\"heartbeat\"");
    m_.closes_other = R.add(MetricKind::Counter, "aurora_closes_total", closes_help, "reason=\"other\"");
    m_.closes_flood = R.add(MetricKind::Counter, "aurora_closes_total", closes_help, "reason=\"flood\"");
    m_.closes_protocol = R.add(MetricKind::Counter, "aurora_closes_total", closes_help, "reason=\"protocol_error\"");
    m_.frames_refused = R.add(MetricKind::Counter, "aurora_frames_refused_total",
                              "Frames answered rate_limited: over limits.frames or limits.frame_budgets", "");
    m_.pending_refused = R.add(MetricKind::Counter, "aurora_pending_refused_total",
                               "Frames answered busy: limits.max_pending_per_conn messages already in flight", "");
    m_.conns_refused = R.add(MetricKind::Counter, "aurora_connections_refused_total",
                             "Connections answered 503 at accept: limits.max_connections reached", "");
    m_.http_slow_bodies = R.add(MetricKind::Counter, "aurora_http_slow_bodies_total",
                                "HTTP request bodies not complete within limits.http_body_timeout_ms (408)", "");
    m_.auth_rejected = R.add(MetricKind::Counter, "aurora_auth_rejected_total", "WebSocket upgrades refused", "");
    m_.http_requests = R.add(MetricKind::Counter, "aurora_http_requests_total", "HTTP requests received", "");
    m_.messages_unhandled = R.add(MetricKind::Counter, "aurora_messages_unhandled_total",
                                  "Frames no plugin handled", "");
    m_.pending_messages = R.add(MetricKind::Gauge, "aurora_pending_messages", "Messages held PENDING by plugins", "");
    m_.messages_batched = R.add(MetricKind::Counter, "aurora_ndjson_messages_total",
                                "Messages sent inside multi-message frames (subprotocol aurora.ndjson)", "");
    const char *deflate_help = "permessage-deflate payload bytes, before and after compression (out: per delivery)";
    m_.deflate_in = R.add(MetricKind::Counter, "aurora_compression_bytes_total", deflate_help,
                          "direction=\"out\",stage=\"before\"");
    m_.deflate_out = R.add(MetricKind::Counter, "aurora_compression_bytes_total", deflate_help,
                           "direction=\"out\",stage=\"after\"");
    m_.inflate_in = R.add(MetricKind::Counter, "aurora_compression_bytes_total", deflate_help,
                          "direction=\"in\",stage=\"after\"");
    m_.inflate_out = R.add(MetricKind::Counter, "aurora_compression_bytes_total", deflate_help,
                           "direction=\"in\",stage=\"before\"");
    m_.deflate_runs = R.add(MetricKind::Counter, "aurora_compressions_total",
                            "Payloads compressed (a broadcast once, whatever its recipients)", "");
    m_.rss = R.add(MetricKind::Gauge, "process_resident_memory_bytes", "Resident memory of this process", "");
    m_.heap_in_use = R.add(MetricKind::Gauge, "aurora_heap_in_use_bytes",
                           "malloc'd bytes in use (glibc mallinfo2: uordblks + hblkhd), at scrape time", "");
    m_.heap_free = R.add(MetricKind::Gauge, "aurora_heap_free_bytes",
                         "Bytes malloc holds free (fordblks): RSS above in-use that is fragmentation or high-water", "");
    m_.heap_trims = R.add(MetricKind::Counter, "aurora_heap_trims_total",
                          "malloc_trim calls after the free heap grew (pages handed back to the kernel)", "");
}

// The memory gauges, refreshed when /metrics is read.
void Host::refresh_memory_metrics() {
    struct mallinfo2 mi = mallinfo2();
    m_.heap_in_use->set(static_cast<double>(mi.uordblks + mi.hblkhd));
    m_.heap_free->set(static_cast<double>(mi.fordblks));
    long pages = 0, resident = 0;
    if (FILE *f = std::fopen("/proc/self/statm", "r")) {
        if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        std::fclose(f);
    }
    m_.rss->set(static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)));
}

// After a burst (thousands of handshakes, snapshots waiting in output
// buffers) glibc keeps the freed memory, scattered between live blocks, and
// RSS stays at the high-water mark. malloc_trim gives whole free pages in the
// middle of the heap back to the kernel (madvise). It walks the free chunks,
// so it runs only when the free total grew by kTrimStepBytes since the last
// time, at most every 5 s.
void Host::trim_heap() {
    constexpr size_t kTrimStepBytes = 8u << 20;
    struct mallinfo2 mi = mallinfo2();
    if (mi.fordblks < trimmed_at_free_ + kTrimStepBytes) {
        trimmed_at_free_ = std::min(trimmed_at_free_, mi.fordblks);
        return;
    }
    auto t0 = std::chrono::steady_clock::now();
    malloc_trim(0);
    std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - t0;
    trimmed_at_free_ = mi.fordblks;
    m_.heap_trims->add(1);
    AURORA_HLOG(AURORA_LOG_INFO, 0, "heap trim: %zu MB free (%zu MB in use) handed back in %.1f ms", mi.fordblks >> 20,
                (mi.uordblks + mi.hblkhd) >> 20, took.count());
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
    if (int rc = uv_loop_init(&loop_); rc != 0) {
        error = std::string("cannot create the event loop: ") + uv_strerror(rc);
        exit_code = AURORA_HOST_EXIT_FATAL;
        return false;
    }
    loop_ready_ = true;
    uv_prepare_init(&loop_, &before_sleep_);
    before_sleep_.data = this;
    uv_prepare_start(&before_sleep_, [](uv_prepare_t *p) { static_cast<Host *>(p->data)->flush_pending_writes(); });
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

bool Host::load_plugins(std::string &error) {
    for (size_t i = 0; i < cfg_.plugins.size(); ++i) {
        const PluginConfig &pc = cfg_.plugins[i];
        auto lib = PluginLibrary::open(pc.path, error);
        if (!lib) return false;
        auto p = std::make_unique<aurora_plugin_ctx>();
        p->host = this;
        p->index = i;
        p->name = pc.name;
        p->config_json = pc.config_json;
        p->hooks = lib->hooks();
        p->lib = std::move(lib);
        for (size_t h = 0; h < static_cast<size_t>(Hook::Count); ++h) {
            std::string labels = "plugin=\"" + p->name + "\",hook=\"" + hook_name(static_cast<Hook>(h)) + "\"";
            p->hook_seconds[h] = registry_.add(MetricKind::Histogram, "aurora_hook_duration_seconds",
                                               "Time spent in plugin hooks on the service thread", labels);
        }
        plugins_.push_back(std::move(p));
    }
    // init in pipeline order; a failure unwinds the ones already initialised.
    for (auto &p : plugins_) {
        if (!p->hooks.init) {
            p->initialized = true;
            continue;
        }
        p->in_init = true;
        aurora_status st = p->hooks.init(api(), p.get(), &p->state);
        p->in_init = false;
        if (st != AURORA_OK) {
            error = "plugin " + p->lib->path() + " (" + p->name + ", ABI " + p->lib->abi_version() +
                    ", host ABI " + std::to_string(AURORA_ABI_MAJOR) + "." + std::to_string(AURORA_ABI_MINOR) +
                    "): init failed with status " + std::to_string(st) + " (see its log lines above)";
            // Threads it started before failing are stopped and joined; then
            // everything else already initialised is shut down.
            for (auto &w : p->workers) {
                w->stop = true;
                {
                    std::lock_guard lock(w->mu);
                    w->woken = true;
                }
                w->cv.notify_all();
                if (w->thread.joinable()) w->thread.join();
            }
            p->workers.clear();
            stop_workers();
            shutdown_plugins();
            plugins_.clear();
            routes_.clear();
            return false;
        }
        p->initialized = true;
        AURORA_HLOG(AURORA_LOG_INFO, 0, "plugin %s %s loaded from %s (ABI %s)", p->name.c_str(),
                    p->hooks.version ? p->hooks.version : "", p->lib->path().c_str(), p->lib->abi_version().c_str());
    }
    return true;
}

void Host::stop_workers() {
    for (auto &p : plugins_) {
        for (auto &w : p->workers) {
            w->stop = true;
            {
                std::lock_guard lock(w->mu);
                w->woken = true;
            }
            w->cv.notify_all();
        }
    }
    // Joined, not freed: a plugin may still hold its aurora_worker handles
    // (e.g. to wake a thread from on_disconnect while the lws context is
    // destroyed); they stay valid until plugins_ is cleared, after the
    // plugins' shutdown hooks (host_api.h, HANDLES).
    for (auto &p : plugins_) {
        for (auto &w : p->workers) {
            if (w->thread.joinable()) w->thread.join();
        }
    }
}

void Host::shutdown_plugins() {
    for (auto it = plugins_.rbegin(); it != plugins_.rend(); ++it) {
        auto &p = *it;
        if (p->initialized && p->hooks.shutdown) p->hooks.shutdown(p->state);
        p->initialized = false;
        p->state = nullptr;
    }
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
    stop_workers();
    drain_commands();
    auto flush_until = std::chrono::steady_clock::now() +
                       std::chrono::milliseconds(std::min(cfg_.shutdown_grace_ms, 500));
    while (http_in_flight() && std::chrono::steady_clock::now() < flush_until) {
        if (uv_run(&loop_, UV_RUN_ONCE) == 0) break;
    }
    {
        std::lock_guard lock(queue_mu_);
        queue_open_ = false;
    }
    AURORA_HLOG(AURORA_LOG_INFO, 0, "stopped");
    return AURORA_HOST_EXIT_OK;
}

bool Host::http_in_flight() const {
    for (const auto &[wsi, req] : http_reqs_) {
        if (req->dispatched && req->route && req->wsi) return true;  // a plugin still owes or is writing a reply
    }
    return false;
}

void Host::maybe_finish_drain() {
    if (draining_ && !finished_ && conns_.empty() && !http_in_flight()) {
        finished_ = true;
        lws_cancel_service(ctx_);
    }
}

void Host::request_stop() {
    stop_requested_ = true;
    std::lock_guard lock(queue_mu_);
    if (queue_open_ && ctx_) lws_cancel_service(ctx_);
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

aurora_status Host::post(Command cmd) {
    bool wake;
    {
        std::lock_guard lock(queue_mu_);
        if (!queue_open_) return AURORA_ERR_CLOSED;
        wake = queue_.empty();
        queue_.push_back(std::move(cmd));
        // One wake-up per batch: whoever finds the queue empty wakes the loop;
        // the loop takes the whole queue at once.
        if (wake && ctx_) lws_cancel_service(ctx_);
    }
    m_.queue_commands->add(1);
    return AURORA_OK;
}

void Host::drain_commands() {
    std::vector<Command> batch;
    {
        std::lock_guard lock(queue_mu_);
        batch.swap(queue_);
    }
    for (Command &cmd : batch) {
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
            http_apply_reply(cmd.req, cmd.status, std::move(cmd.content_type), std::move(cmd.extra_headers),
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
    case LWS_CALLBACK_HTTP: return on_http(wsi, static_cast<const char *>(in));
    case LWS_CALLBACK_HTTP_BODY: return on_http_body(wsi, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION: return on_http_body_done(wsi);
    case LWS_CALLBACK_HTTP_WRITEABLE: return on_http_writeable(wsi);
    case LWS_CALLBACK_HTTP_FILE_COMPLETION:
        if (lws_http_transaction_completed(wsi)) return -1;
        return 0;
    case LWS_CALLBACK_CLOSED_HTTP: on_http_closed(wsi); return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        if (lws_get_opaque_user_data(wsi) == &open_sockets_) {
            lws_set_opaque_user_data(wsi, nullptr);
            open_sockets_.fetch_sub(1, std::memory_order_relaxed);
        }
        on_http_closed(wsi);
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
