// The aurora_host_api table: the only way a plugin reaches the host.
// Each function checks its arguments and its thread, never throws, and
// returns a status the plugin can act on.
#include <chrono>
#include <cstdarg>
#include <cstring>
#include <ctime>

#include "host.h"
#include "json_text.h"
#include "log.h"
#include "loop_api.h"

using aurora::host::Command;
using aurora::host::Host;
using aurora::host::Logger;
using aurora::host::make_frame;

namespace {

aurora_str str(const std::string &s) { return aurora_str{s.data(), s.size()}; }
aurora_str empty_str() { return aurora_str{nullptr, 0}; }
std::string_view view(aurora_str s) { return s.ptr ? std::string_view(s.ptr, s.len) : std::string_view(); }

// A service-thread-only function called from elsewhere: log once per plugin
// and function, then refuse.
bool wrong_thread(aurora_plugin_ctx *self, const char *fn) {
    if (self->host->on_service_thread()) return false;
    thread_local const char *last = nullptr;
    if (last != fn) {
        last = fn;
        Logger::instance().write(AURORA_LOG_ERROR, self->name, 0,
                                 std::string(fn) + " called off the service thread: refused (see aurora/host_api.h)");
    }
    return true;
}

// ---- logging and configuration ----

void api_log(aurora_plugin_ctx *self, aurora_log_level level, const char *fmt, ...) {
    if (!self || !fmt || !Logger::instance().enabled(level)) return;
    va_list ap;
    va_start(ap, fmt);
    Logger::instance().vlog(level, self->name, 0, fmt, ap);
    va_end(ap);
}

void api_log_conn(aurora_plugin_ctx *self, aurora_log_level level, aurora_conn_id conn, const char *fmt, ...) {
    if (!self || !fmt || !Logger::instance().enabled(level)) return;
    va_list ap;
    va_start(ap, fmt);
    Logger::instance().vlog(level, self->name, conn, fmt, ap);
    va_end(ap);
}

int32_t api_log_enabled(aurora_plugin_ctx *, aurora_log_level level) { return Logger::instance().enabled(level); }

aurora_str api_config_json(aurora_plugin_ctx *self) { return self ? str(self->config_json) : empty_str(); }

aurora_str api_setting(aurora_plugin_ctx *self, const char *key) {
    if (!self || !key) return empty_str();
    const auto &s = self->host->settings();
    auto it = s.find(key);
    return it == s.end() ? empty_str() : str(it->second);
}

// ---- connections ----

aurora_conn_id api_conn_id(const aurora_conn *c) { return c ? c->id : 0; }
aurora_str api_conn_user_id(const aurora_conn *c) { return c ? str(c->user_id) : empty_str(); }
aurora_str api_conn_username(const aurora_conn *c) { return c ? str(c->username) : empty_str(); }
aurora_str api_conn_remote_addr(const aurora_conn *c) { return c ? str(c->remote_addr) : empty_str(); }

void *api_conn_get_data(aurora_plugin_ctx *self, const aurora_conn *c) {
    if (!self || !c || wrong_thread(self, "conn_get_data")) return nullptr;
    return self->host->conn_data(self, c);
}

void api_conn_set_data(aurora_plugin_ctx *self, aurora_conn *c, void *data) {
    if (!self || !c || wrong_thread(self, "conn_set_data")) return;
    self->host->set_conn_data(self, c, data);
}

// ---- handshake ----

aurora_str keep(const aurora_handshake *hs, std::string s) {
    hs->answers.push_back(std::move(s));
    return str(hs->answers.back());
}

aurora_str api_hs_header(const aurora_handshake *hs, const char *name) {
    if (!hs || !name || !hs->head) return empty_str();
    std::string lname(name);
    for (char &ch : lname) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (!hs->head->header(lname)) return empty_str();
    return keep(hs, hs->head->header_list(lname));  // repeated fields joined by ", "
}

aurora_str api_hs_query(const aurora_handshake *hs, const char *key) {
    if (!hs || !key || !hs->head) return empty_str();
    std::optional<std::string> v = hs->head->query_param(key);
    return v ? keep(hs, std::move(*v)) : empty_str();
}

aurora_str api_hs_path(const aurora_handshake *hs) { return hs ? str(hs->path) : empty_str(); }
aurora_str api_hs_token(const aurora_handshake *hs) { return hs ? str(hs->token) : empty_str(); }
aurora_str api_hs_remote_addr(const aurora_handshake *hs) { return hs ? str(hs->remote_addr) : empty_str(); }

// ---- messages ----

aurora_str api_msg_payload(const aurora_msg *m) { return m ? str(m->payload) : empty_str(); }
aurora_str api_msg_type(const aurora_msg *m) { return m ? str(m->type) : empty_str(); }
aurora_conn_id api_msg_conn_id(const aurora_msg *m) { return m ? m->conn : 0; }
int32_t api_msg_is_binary(const aurora_msg *m) { return m && m->binary ? 1 : 0; }
aurora_str api_msg_ref(const aurora_msg *m) { return m && !m->ref_json.empty() ? str(m->ref_json) : empty_str(); }

aurora_status api_msg_reply_error(aurora_msg *m, const char *code, const char *message) {
    if (!m || !code || !aurora::host::valid_error_code(code)) return AURORA_ERR_INVALID;
    m->reply = aurora::host::error_frame(code, message ? message : "", m->ref_json);
    return AURORA_OK;
}

aurora_status api_accept_raw_messages(aurora_plugin_ctx *self) {
    if (!self) return AURORA_ERR_INVALID;
    if (!self->in_init) {
        api_log(self, AURORA_LOG_ERROR, "accept_raw_messages is only allowed during init");
        return AURORA_ERR_WRONG_THREAD;
    }
    self->raw_messages = true;
    self->host->note_raw_plugin();
    return AURORA_OK;
}

aurora_status api_msg_set_payload(aurora_msg *m, aurora_str json) {
    if (!m || !json.ptr) return AURORA_ERR_INVALID;
    auto parsed = aurora::host::parse_json(view(json));
    if (!parsed || !cJSON_IsObject(parsed.get())) return AURORA_ERR_INVALID;
    m->payload.assign(json.ptr, json.len);
    return AURORA_OK;
}

aurora_status api_msg_set_reply(aurora_msg *m, aurora_str json) {
    if (!m || !json.ptr || json.len == 0) return AURORA_ERR_INVALID;
    auto parsed = aurora::host::parse_json(view(json));
    if (!parsed || !cJSON_IsObject(parsed.get())) return AURORA_ERR_INVALID;
    m->reply.assign(json.ptr, json.len);
    return AURORA_OK;
}

// ---- sending ----

aurora_status send_frame(aurora_plugin_ctx *self, aurora_conn_id conn, aurora_str payload,
                         aurora::host::ws::Opcode opcode) {
    if (!self || !payload.ptr || conn == 0) return AURORA_ERR_INVALID;
    Host *h = self->host;
    auto frame = make_frame(view(payload), opcode);
    if (h->on_service_thread()) {
        aurora_conn *c = h->find_conn(conn);
        if (!c) return AURORA_ERR_NOT_FOUND;
        if (c->closing) return AURORA_ERR_CLOSED;
        h->enqueue(c, frame);
        return AURORA_OK;
    }
    Command cmd{Command::Kind::Send};
    cmd.conn = conn;
    cmd.frame = std::move(frame);
    return h->post(std::move(cmd));
}

aurora_status api_send(aurora_plugin_ctx *self, aurora_conn_id conn, aurora_str payload) {
    return send_frame(self, conn, payload, aurora::host::ws::kText);
}

aurora_status api_send_binary(aurora_plugin_ctx *self, aurora_conn_id conn, aurora_str payload) {
    return send_frame(self, conn, payload, aurora::host::ws::kBinary);
}

aurora_status api_send_error(aurora_plugin_ctx *self, aurora_conn_id conn, const char *code, const char *message,
                             aurora_str ref) {
    if (!code || !aurora::host::valid_error_code(code)) return AURORA_ERR_INVALID;
    std::optional<std::string> ref_text;
    if (ref.len && !(ref.ptr && (ref_text = aurora::host::canonical_ref(view(ref))))) return AURORA_ERR_INVALID;
    const std::string frame = aurora::host::error_frame(code, message ? message : "", ref_text ? *ref_text : "");
    return send_frame(self, conn, aurora_str{frame.data(), frame.size()}, aurora::host::ws::kText);
}

aurora_status api_broadcast(aurora_plugin_ctx *self, aurora_str room, aurora_str payload, aurora_conn_id except) {
    if (!self || !room.ptr || !room.len || !payload.ptr) return AURORA_ERR_INVALID;
    Host *h = self->host;
    auto frame = make_frame(view(payload));  // one copy, shared by every recipient
    if (h->on_service_thread()) {
        h->broadcast_local(view(room), frame, except);
        return AURORA_OK;
    }
    Command cmd{Command::Kind::Broadcast};
    cmd.room.assign(room.ptr, room.len);
    cmd.frame = std::move(frame);
    cmd.conn = except;
    return h->post(std::move(cmd));
}

aurora_status api_close(aurora_plugin_ctx *self, aurora_conn_id conn, uint16_t code, aurora_str reason) {
    if (!self || conn == 0 || code < 1000 || code > 4999) return AURORA_ERR_INVALID;
    Host *h = self->host;
    std::string why(view(reason));
    if (h->on_service_thread()) {
        aurora_conn *c = h->find_conn(conn);
        if (!c) return AURORA_ERR_NOT_FOUND;
        h->close_conn(c, code, why, h->m().closes_plugin, true);
        return AURORA_OK;
    }
    Command cmd{Command::Kind::Close};
    cmd.conn = conn;
    cmd.code = code;
    cmd.text = std::move(why);
    return h->post(std::move(cmd));
}

// ---- rooms ----

aurora_status api_room_join(aurora_plugin_ctx *self, aurora_conn_id conn, aurora_str room) {
    if (!self || !room.ptr) return AURORA_ERR_INVALID;
    if (wrong_thread(self, "room_join")) return AURORA_ERR_WRONG_THREAD;
    aurora_conn *c = self->host->find_conn(conn);
    if (!c) return AURORA_ERR_NOT_FOUND;
    return self->host->room_join(c, view(room));
}

aurora_status api_room_leave(aurora_plugin_ctx *self, aurora_conn_id conn, aurora_str room) {
    if (!self || !room.ptr) return AURORA_ERR_INVALID;
    if (wrong_thread(self, "room_leave")) return AURORA_ERR_WRONG_THREAD;
    aurora_conn *c = self->host->find_conn(conn);
    if (!c) return AURORA_ERR_NOT_FOUND;
    return self->host->room_leave(c, view(room));
}

int32_t api_room_has(aurora_plugin_ctx *self, aurora_conn_id conn, aurora_str room) {
    if (!self || !room.ptr || wrong_thread(self, "room_has")) return 0;
    aurora_conn *c = self->host->find_conn(conn);
    return c && self->host->room_has(c, view(room));
}

uint32_t api_room_size(aurora_plugin_ctx *self, aurora_str room) {
    if (!self || !room.ptr || wrong_thread(self, "room_size")) return 0;
    return self->host->room_size(view(room));
}

// ---- HTTP ----

aurora_status api_http_route(aurora_plugin_ctx *self, const char *method, const char *path, int32_t prefix,
                             aurora_http_handler handler, void *userdata) {
    if (!self || !method || !path || !handler || path[0] != '/') return AURORA_ERR_INVALID;
    if (!self->in_init) {
        api_log(self, AURORA_LOG_ERROR, "http_route(%s %s) is only allowed during init", method, path);
        return AURORA_ERR_WRONG_THREAD;
    }
    HttpRoute r;
    r.method = method;
    r.path = path;
    r.prefix = prefix != 0;
    r.handler = handler;
    r.userdata = userdata;
    r.owner = self;
    std::string error;
    aurora_status st = self->host->http().router().add(std::move(r), error);
    if (st != AURORA_OK) api_log(self, AURORA_LOG_ERROR, "http_route: %s", error.c_str());
    return st;
}

aurora_status api_http_route_limits(aurora_plugin_ctx *self, const char *method, const char *path, int32_t prefix,
                                    uint64_t max_body_bytes, uint32_t body_timeout_ms) {
    constexpr uint64_t kMaxBody = uint64_t{1} << 30;
    constexpr uint32_t kMaxTimeoutMs = 3'600'000;
    if (!self || !method || !path) return AURORA_ERR_INVALID;
    if (!self->in_init) {
        api_log(self, AURORA_LOG_ERROR, "http_route_limits(%s %s) is only allowed during init", method, path);
        return AURORA_ERR_WRONG_THREAD;
    }
    if (max_body_bytes > kMaxBody || body_timeout_ms > kMaxTimeoutMs) {
        api_log(self, AURORA_LOG_ERROR, "http_route_limits(%s %s): at most 1 GiB and 3600000 ms", method, path);
        return AURORA_ERR_INVALID;
    }
    HttpRoute *r = self->host->http().router().find(method, path, prefix != 0, self);
    if (!r) {
        api_log(self, AURORA_LOG_ERROR, "http_route_limits(%s %s): this plugin has no such route (http_route first)",
                method, path);
        return AURORA_ERR_INVALID;
    }
    r->max_body_bytes = max_body_bytes;
    r->body_timeout_ms = body_timeout_ms;
    return AURORA_OK;
}

aurora_str api_http_method(const aurora_http_req *r) { return r ? str(r->method) : empty_str(); }
aurora_str api_http_path(const aurora_http_req *r) { return r ? str(r->path) : empty_str(); }
aurora_str api_http_body(const aurora_http_req *r) { return r ? str(r->body) : empty_str(); }
aurora_str api_http_remote_addr(const aurora_http_req *r) { return r ? str(r->remote_addr) : empty_str(); }

aurora_str api_http_query(const aurora_http_req *r, const char *key) {
    if (!r || !key) return empty_str();
    auto it = r->query_params.find(key);
    return it == r->query_params.end() ? empty_str() : str(it->second);
}

aurora_str api_http_header(const aurora_http_req *r, const char *name) {
    if (!r || !name) return empty_str();
    for (const auto &[k, v] : r->headers) {
        if (strcasecmp(k.c_str(), name) == 0) return str(v);
    }
    return empty_str();
}

aurora_status api_http_reply(aurora_http_req *req, uint16_t status, const char *content_type, aurora_str extra,
                             aurora_str body) {
    if (!req || status < 100 || status > 599 || !req->route) return AURORA_ERR_INVALID;
    Host *h = req->route->owner->host;
    std::string ctype = content_type ? content_type : "application/json";
    if (h->on_service_thread()) {
        h->http().apply_reply(req, status, std::move(ctype), std::string(view(extra)), std::string(view(body)));
        return AURORA_OK;
    }
    Command cmd{Command::Kind::HttpReply};
    cmd.req = req;
    cmd.status = status;
    cmd.content_type = std::move(ctype);
    cmd.extra_headers.assign(view(extra));
    cmd.body.assign(view(body));
    return h->post(std::move(cmd));
}

// ---- messages, resumed from any thread ----

aurora_status api_msg_resume(aurora_msg *m, aurora_verdict verdict);

// ---- threads ----

aurora_status api_spawn(aurora_plugin_ctx *self, const char *name, aurora_worker_fn fn, void *arg) {
    if (!self || !fn) return AURORA_ERR_INVALID;
    if (!self->in_init) {
        api_log(self, AURORA_LOG_ERROR, "spawn is only allowed during init");
        return AURORA_ERR_WRONG_THREAD;
    }
    auto w = std::make_unique<aurora_worker>();
    w->owner = self;
    w->name = name ? name : "worker";
    w->fn = fn;
    w->arg = arg;
    aurora_worker *raw = w.get();
    try {
        raw->thread = std::thread([raw] {
            std::string tname = raw->owner->name + ":" + raw->name;
            pthread_setname_np(pthread_self(), tname.substr(0, 15).c_str());
            raw->fn(raw, raw->arg);
        });
    } catch (const std::system_error &e) {
        api_log(self, AURORA_LOG_ERROR, "spawn %s: %s", w->name.c_str(), e.what());
        return AURORA_ERR;
    }
    self->workers.push_back(std::move(w));
    return AURORA_OK;
}

int32_t api_worker_should_stop(const aurora_worker *w) { return w ? w->stop.load() : 1; }

int32_t api_worker_wait(aurora_worker *w, uint32_t timeout_ms) {
    if (!w) return 1;
    std::unique_lock lock(w->mu);
    w->cv.wait_for(lock, std::chrono::milliseconds(timeout_ms), [w] { return w->woken || w->stop.load(); });
    w->woken = false;
    return w->stop.load();
}

void api_worker_wake(aurora_worker *w) {
    if (w) w->wake();
}

// ---- metrics ----

aurora_metric *register_metric(aurora_plugin_ctx *self, MetricKind kind, const char *name, const char *help,
                               const char *labels, const double *bounds = nullptr, size_t n = 0) {
    if (!self || !name) return nullptr;
    if (!self->in_init) {
        api_log(self, AURORA_LOG_ERROR, "metric %s: registration is only allowed during init", name);
        return nullptr;
    }
    std::string full = "aurora_" + self->name + "_" + name;
    return self->host->metrics().add(kind, full, help ? help : "", labels ? labels : "", bounds, n);
}

aurora_metric *api_metric_counter(aurora_plugin_ctx *self, const char *name, const char *help, const char *labels) {
    return register_metric(self, MetricKind::Counter, name, help, labels);
}
aurora_metric *api_metric_gauge(aurora_plugin_ctx *self, const char *name, const char *help, const char *labels) {
    return register_metric(self, MetricKind::Gauge, name, help, labels);
}
aurora_metric *api_metric_histogram(aurora_plugin_ctx *self, const char *name, const char *help, const char *labels,
                                    const double *bounds, size_t n) {
    return register_metric(self, MetricKind::Histogram, name, help, labels, bounds, n);
}
void api_metric_add(aurora_metric *m, double d) {
    if (m && m->kind != MetricKind::Histogram && (m->kind == MetricKind::Gauge || d >= 0)) m->add(d);
}
void api_metric_set(aurora_metric *m, double v) {
    if (m && m->kind == MetricKind::Gauge) m->set(v);
}
void api_metric_observe(aurora_metric *m, double v) {
    if (m && m->kind == MetricKind::Histogram) m->observe(v);
}

// ---- clock ----

uint64_t api_now_monotonic_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t api_now_wall_ms() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000ULL + static_cast<uint64_t>(ts.tv_nsec) / 1000000ULL;
}

// ---- running code on the service thread ----

aurora_status api_call_on_service(aurora_plugin_ctx *self, void (*fn)(void *), void *arg) {
    if (!self || !fn) return AURORA_ERR_INVALID;
    Command cmd{Command::Kind::Call};
    cmd.fn = fn;
    cmd.arg = arg;
    return self->host->post(std::move(cmd));
}

const aurora_host_api kApi = [] {
    aurora_host_api a;
    std::memset(&a, 0, sizeof a);
    a.struct_size = sizeof(aurora_host_api);
    a.abi_major = AURORA_ABI_MAJOR;
    a.abi_minor = AURORA_ABI_MINOR;
    a.log_msg = api_log;
    a.log_conn = api_log_conn;
    a.log_enabled = api_log_enabled;
    a.config_json = api_config_json;
    a.setting = api_setting;
    a.conn_id = api_conn_id;
    a.conn_user_id = api_conn_user_id;
    a.conn_username = api_conn_username;
    a.conn_remote_addr = api_conn_remote_addr;
    a.conn_get_data = api_conn_get_data;
    a.conn_set_data = api_conn_set_data;
    a.hs_header = api_hs_header;
    a.hs_query = api_hs_query;
    a.hs_path = api_hs_path;
    a.hs_token = api_hs_token;
    a.hs_remote_addr = api_hs_remote_addr;
    a.msg_payload = api_msg_payload;
    a.msg_type = api_msg_type;
    a.msg_conn_id = api_msg_conn_id;
    a.msg_set_payload = api_msg_set_payload;
    a.msg_set_reply = api_msg_set_reply;
    a.msg_resume = api_msg_resume;
    a.send = api_send;
    a.broadcast = api_broadcast;
    a.close = api_close;
    a.room_join = api_room_join;
    a.room_leave = api_room_leave;
    a.room_has = api_room_has;
    a.room_size = api_room_size;
    a.http_route = api_http_route;
    a.http_route_limits = api_http_route_limits;
    a.http_method = api_http_method;
    a.http_path = api_http_path;
    a.http_query = api_http_query;
    a.http_header = api_http_header;
    a.http_body = api_http_body;
    a.http_remote_addr = api_http_remote_addr;
    a.http_reply = api_http_reply;
    a.spawn = api_spawn;
    a.worker_should_stop = api_worker_should_stop;
    a.worker_wait = api_worker_wait;
    a.worker_wake = api_worker_wake;
    a.metric_counter = api_metric_counter;
    a.metric_gauge = api_metric_gauge;
    a.metric_histogram = api_metric_histogram;
    a.metric_add = api_metric_add;
    a.metric_set = api_metric_set;
    a.metric_observe = api_metric_observe;
    a.now_monotonic_ns = api_now_monotonic_ns;
    a.now_wall_ms = api_now_wall_ms;
    a.call_on_service = api_call_on_service;
    a.accept_raw_messages = api_accept_raw_messages;
    a.msg_is_binary = api_msg_is_binary;
    a.send_binary = api_send_binary;
    a.msg_ref = api_msg_ref;
    a.msg_reply_error = api_msg_reply_error;
    a.send_error = api_send_error;
    aurora::host::fill_loop_api(a);
    return a;
}();

}  // namespace

namespace {
aurora_status api_msg_resume(aurora_msg *m, aurora_verdict verdict) {
    if (!m || !m->host) return AURORA_ERR_INVALID;
    Host *h = m->host;
    if (h->on_service_thread()) {
        h->resume(m, verdict);
        return AURORA_OK;
    }
    Command cmd{Command::Kind::Resume};
    cmd.msg = m;
    cmd.verdict = verdict;
    return h->post(std::move(cmd));
}
}  // namespace

namespace aurora::host {
const aurora_host_api *Host::api() const { return &kApi; }
}  // namespace aurora::host
