// The recording host API: the same contract as host/src/host_api.cpp
// (argument checks, threads, ownership), with every effect recorded instead
// of reaching a socket.
#include "recording_host.h"

#include <cjson/cJSON.h>

#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "json_text.h"
#include "plugin_library.h"

namespace aurora::py {

namespace {

RecordingHost *H(aurora_plugin_ctx *self) { return reinterpret_cast<RecordingHost *>(self); }
aurora_plugin_ctx *ctx(RecordingHost *h) { return reinterpret_cast<aurora_plugin_ctx *>(h); }
FakeConn *C(const aurora_conn *c) { return reinterpret_cast<FakeConn *>(const_cast<aurora_conn *>(c)); }
aurora_conn *conn_handle(FakeConn *c) { return reinterpret_cast<aurora_conn *>(c); }
FakeMsg *M(const aurora_msg *m) { return reinterpret_cast<FakeMsg *>(const_cast<aurora_msg *>(m)); }
const FakeHandshake *HS(const aurora_handshake *h) { return reinterpret_cast<const FakeHandshake *>(h); }
FakeHttpReq *R(const aurora_http_req *r) { return reinterpret_cast<FakeHttpReq *>(const_cast<aurora_http_req *>(r)); }
FakeWorker *W(const aurora_worker *w) { return reinterpret_cast<FakeWorker *>(const_cast<aurora_worker *>(w)); }
FakeMetric *MT(aurora_metric *m) { return reinterpret_cast<FakeMetric *>(m); }

aurora_str str(const std::string &s) { return aurora_str{s.c_str(), s.size()}; }
aurora_str none() { return aurora_str{nullptr, 0}; }
std::string text(aurora_str s) { return s.ptr ? std::string(s.ptr, s.len) : std::string(); }

bool json_object(aurora_str s) {
    if (!s.ptr) return false;
    cJSON *j = cJSON_ParseWithLength(s.ptr, s.len);
    bool ok = cJSON_IsObject(j);
    cJSON_Delete(j);
    return ok;
}

std::string lower(std::string s) {
    for (char &c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string vformat(const char *fmt, va_list ap) {
    va_list copy;
    va_copy(copy, ap);
    int n = std::vsnprintf(nullptr, 0, fmt, copy);
    va_end(copy);
    if (n < 0) return fmt;
    std::string out(static_cast<size_t>(n) + 1, '\0');
    std::vsnprintf(out.data(), out.size(), fmt, ap);
    out.resize(static_cast<size_t>(n));
    return out;
}

bool refuse_off_service(RecordingHost *h, const char *fn) {
    if (h->on_service_thread()) return false;
    h->record_refusal(fn);
    return true;
}

// ---- logging and configuration ----

void api_log(aurora_plugin_ctx *self, aurora_log_level level, const char *fmt, ...) {
    if (!self || !fmt) return;
    va_list ap;
    va_start(ap, fmt);
    Event e;
    e.kind = "log";
    e.code = level;
    e.payload = vformat(fmt, ap);
    va_end(ap);
    H(self)->record(std::move(e));
}

void api_log_conn(aurora_plugin_ctx *self, aurora_log_level level, aurora_conn_id conn, const char *fmt, ...) {
    if (!self || !fmt) return;
    va_list ap;
    va_start(ap, fmt);
    Event e;
    e.kind = "log";
    e.code = level;
    e.conn = conn;
    e.payload = vformat(fmt, ap);
    va_end(ap);
    H(self)->record(std::move(e));
}

int32_t api_log_enabled(aurora_plugin_ctx *, aurora_log_level) { return 1; }  // everything is recorded

aurora_str api_config_json(aurora_plugin_ctx *self) { return self ? str(H(self)->config_json_) : none(); }

aurora_str api_setting(aurora_plugin_ctx *self, const char *key) {
    if (!self || !key) return none();
    auto &s = H(self)->settings_;
    auto it = s.find(key);
    return it == s.end() ? none() : str(it->second);
}

// ---- connections ----

aurora_conn_id api_conn_id(const aurora_conn *c) { return c ? C(c)->id : 0; }
aurora_str api_conn_user_id(const aurora_conn *c) { return c ? str(C(c)->user_id) : none(); }
aurora_str api_conn_username(const aurora_conn *c) { return c ? str(C(c)->username) : none(); }
aurora_str api_conn_remote_addr(const aurora_conn *c) { return c ? str(C(c)->remote_addr) : none(); }

void *api_conn_get_data(aurora_plugin_ctx *self, const aurora_conn *c) {
    if (!self || !c || refuse_off_service(H(self), "conn_get_data")) return nullptr;
    return C(c)->data;
}

void api_conn_set_data(aurora_plugin_ctx *self, aurora_conn *c, void *data) {
    if (!self || !c || refuse_off_service(H(self), "conn_set_data")) return;
    C(c)->data = data;
}

// ---- handshake ----

aurora_str find_in(const std::map<std::string, std::string> &m, const std::string &key) {
    auto it = m.find(key);
    return it == m.end() ? none() : str(it->second);
}
aurora_str api_hs_header(const aurora_handshake *hs, const char *name) {
    return hs && name ? find_in(HS(hs)->headers, lower(name)) : none();
}
aurora_str api_hs_query(const aurora_handshake *hs, const char *key) {
    return hs && key ? find_in(HS(hs)->query, key) : none();
}
aurora_str api_hs_path(const aurora_handshake *hs) { return hs ? str(HS(hs)->path) : none(); }
aurora_str api_hs_token(const aurora_handshake *hs) { return hs ? str(HS(hs)->token) : none(); }
aurora_str api_hs_remote_addr(const aurora_handshake *hs) { return hs ? str(HS(hs)->remote_addr) : none(); }

// ---- messages ----

aurora_str api_msg_payload(const aurora_msg *m) { return m ? str(M(m)->payload) : none(); }
aurora_str api_msg_type(const aurora_msg *m) { return m ? str(M(m)->type) : none(); }
aurora_conn_id api_msg_conn_id(const aurora_msg *m) { return m ? M(m)->conn : 0; }
int32_t api_msg_is_binary(const aurora_msg *m) { return m && M(m)->binary ? 1 : 0; }
aurora_str api_msg_ref(const aurora_msg *m) { return m && !M(m)->ref_json.empty() ? str(M(m)->ref_json) : none(); }

// The error frame is the host's own (host/src/json_text.cpp): one wire shape.
aurora_status api_msg_reply_error(aurora_msg *m, const char *code, const char *message) {
    if (!m || !code || !aurora::host::valid_error_code(code)) return AURORA_ERR_INVALID;
    M(m)->reply = aurora::host::error_frame(code, message ? message : "", M(m)->ref_json);
    return AURORA_OK;
}

aurora_status api_accept_raw_messages(aurora_plugin_ctx *self) {
    if (!self) return AURORA_ERR_INVALID;
    RecordingHost *h = H(self);
    if (!h->in_init_) return AURORA_ERR_WRONG_THREAD;
    h->raw_messages_ = true;
    return AURORA_OK;
}

aurora_status api_msg_set_payload(aurora_msg *m, aurora_str json) {
    if (!m || !json_object(json)) return AURORA_ERR_INVALID;
    M(m)->payload = text(json);
    return AURORA_OK;
}

aurora_status api_msg_set_reply(aurora_msg *m, aurora_str json) {
    if (!m || json.len == 0 || !json_object(json)) return AURORA_ERR_INVALID;
    M(m)->reply = text(json);
    return AURORA_OK;
}

aurora_status api_msg_resume(aurora_msg *m, aurora_verdict verdict) {
    if (!m || !M(m)->host) return AURORA_ERR_INVALID;
    FakeMsg *fm = M(m);
    RecordingHost *h = fm->host;
    std::shared_ptr<FakeMsg> keep;
    {
        std::lock_guard lock(h->mu_);
        for (const auto &p : h->pending_) {
            if (p.get() == fm) keep = p;
        }
        if (!keep || fm->resumed) return AURORA_ERR_INVALID;  // not PENDING, or resumed twice
        fm->resumed = true;
        fm->verdict = verdict;
        h->pending_.erase(keep);
    }
    Event e;
    e.kind = "resume";
    e.conn = fm->conn;
    e.code = verdict;
    e.payload = verdict == AURORA_REPLY ? fm->reply : fm->payload;
    h->record(std::move(e));
    return AURORA_OK;
}

// ---- sending ----

aurora_status record_send(aurora_plugin_ctx *self, aurora_conn_id conn, aurora_str payload, const char *kind) {
    if (!self || !payload.ptr || conn == 0) return AURORA_ERR_INVALID;
    RecordingHost *h = H(self);
    if (h->on_service_thread() && !h->find_conn(conn)) return AURORA_ERR_NOT_FOUND;
    Event e;
    e.kind = kind;
    e.conn = conn;
    e.payload = text(payload);
    h->record(std::move(e));
    return AURORA_OK;
}

aurora_status api_send(aurora_plugin_ctx *self, aurora_conn_id conn, aurora_str payload) {
    return record_send(self, conn, payload, "send");
}

aurora_status api_send_binary(aurora_plugin_ctx *self, aurora_conn_id conn, aurora_str payload) {
    return record_send(self, conn, payload, "send_binary");
}

aurora_status api_send_error(aurora_plugin_ctx *self, aurora_conn_id conn, const char *code, const char *message,
                             aurora_str ref) {
    if (!code || !aurora::host::valid_error_code(code)) return AURORA_ERR_INVALID;
    std::optional<std::string> ref_text;
    if (ref.len && !(ref.ptr && (ref_text = aurora::host::canonical_ref(std::string_view(ref.ptr, ref.len)))))
        return AURORA_ERR_INVALID;
    const std::string frame = aurora::host::error_frame(code, message ? message : "", ref_text ? *ref_text : "");
    return record_send(self, conn, str(frame), "send");
}

aurora_status api_broadcast(aurora_plugin_ctx *self, aurora_str room, aurora_str payload, aurora_conn_id except) {
    if (!self || !room.ptr || !room.len || !payload.ptr) return AURORA_ERR_INVALID;
    RecordingHost *h = H(self);
    Event e;
    e.kind = "broadcast";
    e.room = text(room);
    e.conn = except;
    e.payload = text(payload);
    if (h->on_service_thread()) {
        for (auto id : h->members(e.room)) {
            if (id != except) e.to.push_back(id);
        }
        h->record(std::move(e));
        return AURORA_OK;
    }
    // From another thread: delivered by the service thread, in one FIFO with
    // call_on_service (so a join queued between two broadcasts gets the second).
    e.thread = h->thread_number();
    std::lock_guard lock(h->mu_);
    if (!h->accepting_calls_) return AURORA_ERR_CLOSED;
    h->calls_.emplace_back([h, e]() mutable {
        for (auto id : h->members(e.room)) {
            if (id != e.conn) e.to.push_back(id);
        }
        h->record(std::move(e), true);
    });
    h->cv_.notify_all();
    return AURORA_OK;
}

aurora_status api_close(aurora_plugin_ctx *self, aurora_conn_id conn, uint16_t code, aurora_str reason) {
    if (!self || conn == 0 || code < 1000 || code > 4999) return AURORA_ERR_INVALID;
    RecordingHost *h = H(self);
    if (h->on_service_thread() && !h->find_conn(conn)) return AURORA_ERR_NOT_FOUND;
    Event e;
    e.kind = "close";
    e.conn = conn;
    e.code = code;
    e.payload = text(reason);
    h->record(std::move(e));
    return AURORA_OK;
}

// ---- rooms ----

bool valid_room(aurora_str room) { return room.ptr && room.len >= 1 && room.len <= 256; }

aurora_status api_room_join(aurora_plugin_ctx *self, aurora_conn_id conn, aurora_str room) {
    if (!self || !valid_room(room)) return AURORA_ERR_INVALID;
    if (refuse_off_service(H(self), "room_join")) return AURORA_ERR_WRONG_THREAD;
    FakeConn *c = H(self)->find_conn(conn);
    return c ? H(self)->room_join_impl(c, text(room)) : AURORA_ERR_NOT_FOUND;
}

aurora_status api_room_leave(aurora_plugin_ctx *self, aurora_conn_id conn, aurora_str room) {
    if (!self || !valid_room(room)) return AURORA_ERR_INVALID;
    if (refuse_off_service(H(self), "room_leave")) return AURORA_ERR_WRONG_THREAD;
    FakeConn *c = H(self)->find_conn(conn);
    return c ? H(self)->room_leave_impl(c, text(room)) : AURORA_ERR_NOT_FOUND;
}

int32_t api_room_has(aurora_plugin_ctx *self, aurora_conn_id conn, aurora_str room) {
    if (!self || !room.ptr || refuse_off_service(H(self), "room_has")) return 0;
    FakeConn *c = H(self)->find_conn(conn);
    return c && c->rooms.count(text(room)) ? 1 : 0;
}

uint32_t api_room_size(aurora_plugin_ctx *self, aurora_str room) {
    if (!self || !room.ptr || refuse_off_service(H(self), "room_size")) return 0;
    return static_cast<uint32_t>(H(self)->members(text(room)).size());
}

// ---- HTTP ----

aurora_status api_http_route(aurora_plugin_ctx *self, const char *method, const char *path, int32_t prefix,
                             aurora_http_handler handler, void *userdata) {
    if (!self || !method || !path || !handler || path[0] != '/') return AURORA_ERR_INVALID;
    RecordingHost *h = H(self);
    if (!h->in_init_) {
        api_log(self, AURORA_LOG_ERROR, "http_route(%s %s) is only allowed during init", method, path);
        return AURORA_ERR_WRONG_THREAD;
    }
    std::string p(path);
    if (p == "/health" || p == "/ready" || p == "/metrics" || p == "/" || p == "/ws") return AURORA_ERR_DENIED;
    for (const auto &r : h->routes_) {
        if (r.method == method && r.path == p && r.prefix == (prefix != 0)) return AURORA_ERR_DENIED;
    }
    h->routes_.push_back(Route{method, p, prefix != 0, handler, userdata});
    return AURORA_OK;
}

aurora_status api_http_route_limits(aurora_plugin_ctx *self, const char *method, const char *path, int32_t prefix,
                                    uint64_t max_body_bytes, uint32_t body_timeout_ms) {
    if (!self || !method || !path) return AURORA_ERR_INVALID;
    RecordingHost *h = H(self);
    if (!h->in_init_) {
        api_log(self, AURORA_LOG_ERROR, "http_route_limits(%s %s) is only allowed during init", method, path);
        return AURORA_ERR_WRONG_THREAD;
    }
    if (max_body_bytes > (uint64_t{1} << 30) || body_timeout_ms > 3'600'000) return AURORA_ERR_INVALID;
    for (auto &r : h->routes_) {
        if (r.method == method && r.path == path && r.prefix == (prefix != 0)) {
            r.max_body_bytes = max_body_bytes;  // the body arrives whole here: no timeout to apply
            return AURORA_OK;
        }
    }
    return AURORA_ERR_INVALID;
}

aurora_str api_http_method(const aurora_http_req *r) { return r ? str(R(r)->method) : none(); }
aurora_str api_http_path(const aurora_http_req *r) { return r ? str(R(r)->path) : none(); }
aurora_str api_http_query(const aurora_http_req *r, const char *key) {
    return r && key ? find_in(R(r)->query, key) : none();
}
aurora_str api_http_header(const aurora_http_req *r, const char *name) {
    return r && name ? find_in(R(r)->headers, lower(name)) : none();
}
aurora_str api_http_body(const aurora_http_req *r) { return r ? str(R(r)->body) : none(); }
aurora_str api_http_remote_addr(const aurora_http_req *r) { return r ? str(R(r)->remote_addr) : none(); }

aurora_status api_http_reply(aurora_http_req *req, uint16_t status, const char *content_type, aurora_str extra,
                             aurora_str body) {
    if (!req || status < 100 || status > 599 || !R(req)->host) return AURORA_ERR_INVALID;
    FakeHttpReq *r = R(req);
    RecordingHost *h = r->host;
    Event e;
    {
        std::lock_guard lock(h->mu_);
        if (r->replied) return AURORA_ERR_INVALID;  // exactly once
        // Everything read from the request (the body may point into it) is
        // copied before `replied`: from then on the caller may free it.
        e.kind = "http_reply";
        e.code = status;
        e.room = r->method + " " + r->path;
        e.payload = text(body);
        r->status = status;
        r->content_type = content_type ? content_type : "application/json";
        r->extra_headers = text(extra);
        r->reply_body = e.payload;
        r->replied = true;
        for (auto it = h->open_requests_.begin(); it != h->open_requests_.end(); ++it) {
            if (it->get() == r) {
                h->open_requests_.erase(it);  // may free r: not touched below
                break;
            }
        }
    }
    h->record(std::move(e));
    return AURORA_OK;
}

// ---- threads ----

aurora_status api_spawn(aurora_plugin_ctx *self, const char *name, aurora_worker_fn fn, void *arg) {
    if (!self || !fn) return AURORA_ERR_INVALID;
    RecordingHost *h = H(self);
    if (!h->in_init_) return AURORA_ERR_WRONG_THREAD;
    auto w = std::make_unique<FakeWorker>();
    w->host = h;
    w->name = name ? name : "worker";
    w->fn = fn;
    w->arg = arg;
    FakeWorker *raw = w.get();
    try {
        raw->thread = std::thread([raw] { raw->fn(reinterpret_cast<aurora_worker *>(raw), raw->arg); });
    } catch (const std::system_error &) {
        return AURORA_ERR;
    }
    h->workers_.push_back(std::move(w));
    return AURORA_OK;
}

int32_t api_worker_should_stop(const aurora_worker *w) { return w ? W(w)->stop.load() : 1; }

int32_t api_worker_wait(aurora_worker *w, uint32_t timeout_ms) {
    if (!w) return 1;
    FakeWorker *fw = W(w);
    std::unique_lock lock(fw->mu);
    fw->cv.wait_for(lock, std::chrono::milliseconds(timeout_ms), [fw] { return fw->woken || fw->stop.load(); });
    fw->woken = false;
    return fw->stop.load();
}

void api_worker_wake(aurora_worker *w) {
    if (!w) return;
    FakeWorker *fw = W(w);
    {
        std::lock_guard lock(fw->mu);
        fw->woken = true;
    }
    fw->cv.notify_all();
}

// ---- metrics ----

aurora_metric *add_metric(aurora_plugin_ctx *self, const char *kind, const char *name, const char *help,
                          const char *labels) {
    if (!self || !name || !*name) return nullptr;
    RecordingHost *h = H(self);
    if (!h->in_init_) return nullptr;
    auto m = std::make_unique<FakeMetric>();
    m->kind = kind;
    m->name = "aurora_" + h->instance_name() + "_" + name;
    m->help = help ? help : "";
    m->labels = labels ? labels : "";
    std::lock_guard lock(h->mu_);
    h->metric_store_.push_back(std::move(m));
    return reinterpret_cast<aurora_metric *>(h->metric_store_.back().get());
}

aurora_metric *api_metric_counter(aurora_plugin_ctx *self, const char *name, const char *help, const char *labels) {
    return add_metric(self, "counter", name, help, labels);
}
aurora_metric *api_metric_gauge(aurora_plugin_ctx *self, const char *name, const char *help, const char *labels) {
    return add_metric(self, "gauge", name, help, labels);
}
aurora_metric *api_metric_histogram(aurora_plugin_ctx *self, const char *name, const char *help, const char *labels,
                                    const double *, size_t) {
    return add_metric(self, "histogram", name, help, labels);
}

// Metric updates may come from any thread; one lock for all is plenty here.
std::mutex g_metric_mu;
void api_metric_add(aurora_metric *m, double d) {
    if (!m || MT(m)->kind == "histogram" || (MT(m)->kind == "counter" && d < 0)) return;
    std::lock_guard lock(g_metric_mu);
    MT(m)->value += d;
}
void api_metric_set(aurora_metric *m, double v) {
    if (!m || MT(m)->kind != "gauge") return;
    std::lock_guard lock(g_metric_mu);
    MT(m)->value = v;
}
void api_metric_observe(aurora_metric *m, double v) {
    if (!m || MT(m)->kind != "histogram") return;
    std::lock_guard lock(g_metric_mu);
    MT(m)->value += v;
    MT(m)->count += 1;
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
    RecordingHost *h = H(self);
    {
        std::lock_guard lock(h->mu_);
        if (!h->accepting_calls_) return AURORA_ERR_CLOSED;
        h->calls_.emplace_back([fn, arg] { fn(arg); });
    }
    h->cv_.notify_all();
    return AURORA_OK;
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
    fill_loop_api(a);
    return a;
}();

}  // namespace

const char *verdict_name(aurora_verdict v) {
    switch (v) {
    case AURORA_CONTINUE: return "continue";
    case AURORA_DROP: return "drop";
    case AURORA_REPLY: return "reply";
    case AURORA_PENDING: return "pending";
    default: return "invalid";
    }
}

const char *status_name(aurora_status s) {
    static const char *const names[] = {"ok", "error", "invalid", "not_found", "closed",
                                        "wrong_thread", "denied", "limit", "nomem"};
    return s >= 0 && s <= AURORA_ERR_NOMEM ? names[s] : "unknown";
}

const aurora_host_api *RecordingHost::api() { return &kApi; }

RecordingHost::RecordingHost(const std::string &path, std::string config_json,
                             std::map<std::string, std::string> settings, std::string instance_name)
    : settings_(std::move(settings)), config_json_(std::move(config_json)), path_(path),
      service_(std::this_thread::get_id()) {
    std::string error;
    lib_ = aurora::host::PluginLibrary::open(path, error);
    if (!lib_) throw LoadError(error);
    name_ = instance_name.empty() ? lib_->hooks().name : instance_name;
    if (!lib_->hooks().init) {
        initialized_ = true;
        return;
    }
    in_init_ = true;
    aurora_status rc = lib_->hooks().init(api(), ctx(this), &state_);
    in_init_ = false;
    if (rc != AURORA_OK) {
        // The host calls no other hook after a failed init; the plugin has
        // freed what it made. Its threads, if it started some, are stopped.
        for (auto &w : workers_) {
            w->stop = true;
            w->cv.notify_all();
        }
        for (auto &w : workers_) w->thread.join();
        std::string why = std::string("plugin ") + path + ": init failed with status " + std::to_string(rc) + " (" +
                          status_name(rc) + ")";
        for (const auto &e : events()) {
            if (e.kind == "log" && e.code == AURORA_LOG_ERROR) why += "\n  " + e.payload;
        }
        closed_ = true;
        throw InitError(why);
    }
    initialized_ = true;
}

RecordingHost::~RecordingHost() { close(); }

const aurora_plugin &RecordingHost::hooks() const { return lib_->hooks(); }
std::string RecordingHost::abi_version() const { return lib_->abi_version(); }

uint64_t RecordingHost::thread_number() {
    if (on_service_thread()) return 0;
    std::lock_guard lock(mu_);
    auto id = std::this_thread::get_id();
    auto it = thread_numbers_.find(id);
    if (it == thread_numbers_.end()) it = thread_numbers_.emplace(id, thread_numbers_.size() + 1).first;
    return it->second;
}

void RecordingHost::record_refusal(const char *fn) {
    Event e;
    e.kind = "log";
    e.code = AURORA_LOG_ERROR;
    e.payload = std::string(fn) + " called off the service thread: refused (see aurora/host_api.h)";
    record(std::move(e));
}

void RecordingHost::record(Event e, bool thread_known) {
    if (!thread_known) e.thread = thread_number();
    std::function<void(const Event &)> listener;
    {
        std::lock_guard lock(mu_);
        events_.push_back(e);
        listener = listener_;
    }
    cv_.notify_all();
    if (listener) listener(e);
}

std::vector<Event> RecordingHost::events() const {
    std::lock_guard lock(const_cast<std::mutex &>(mu_));
    return events_;
}

size_t RecordingHost::count(const std::string &kind) const {
    std::lock_guard lock(const_cast<std::mutex &>(mu_));
    size_t n = 0;
    for (const auto &e : events_) n += e.kind == kind;
    return n;
}

std::vector<FakeMetric> RecordingHost::metrics() const {
    std::lock_guard lock(g_metric_mu);
    std::vector<FakeMetric> out;
    for (const auto &m : metric_store_) out.push_back(*m);
    return out;
}

void RecordingHost::set_listener(std::function<void(const Event &)> listener) {
    std::lock_guard lock(mu_);
    listener_ = std::move(listener);
}

FakeConn *RecordingHost::find_conn(aurora_conn_id id) {
    auto it = conns_.find(id);
    return it == conns_.end() ? nullptr : it->second.get();
}

aurora_status RecordingHost::room_join_impl(FakeConn *c, const std::string &room) {
    if (c->rooms.count(room)) return AURORA_OK;
    if (c->rooms.size() >= max_rooms_per_conn_) return AURORA_ERR_LIMIT;
    if (hooks().on_join) {
        aurora_verdict v = hooks().on_join(state_, conn_handle(c), aurora_str{room.data(), room.size()});
        if (v != AURORA_CONTINUE) return AURORA_ERR_DENIED;
    }
    c->rooms.insert(room);
    Event e;
    e.kind = "join";
    e.conn = c->id;
    e.room = room;
    record(std::move(e));
    return AURORA_OK;
}

aurora_status RecordingHost::room_leave_impl(FakeConn *c, const std::string &room) {
    if (!c->rooms.erase(room)) return AURORA_ERR_NOT_FOUND;
    Event e;
    e.kind = "leave";
    e.conn = c->id;
    e.room = room;
    record(std::move(e));
    if (hooks().on_leave) hooks().on_leave(state_, conn_handle(c), aurora_str{room.data(), room.size()});
    return AURORA_OK;
}

AuthResult RecordingHost::authenticate(const FakeHandshake &hs) {
    AuthResult out;
    if (!hooks().authenticate) return out;
    aurora_identity id;
    std::memset(&id, 0, sizeof id);
    id.struct_size = sizeof id;
    out.verdict = hooks().authenticate(state_, reinterpret_cast<const aurora_handshake *>(&hs), &id);
    if (out.verdict == AURORA_AUTH_ACCEPT) {
        out.user_id = text(id.user_id);
        out.username = id.username.len ? text(id.username) : out.user_id;
    } else if (out.verdict == AURORA_AUTH_REJECT) {
        out.status = id.reject_status ? id.reject_status : 401;
        out.reason = text(id.reject_reason);
    }
    run_queued_calls();
    return out;
}

aurora_conn_id RecordingHost::connect(const std::string &user_id, const std::string &username,
                                      const std::string &addr) {
    auto c = std::make_unique<FakeConn>();
    c->id = next_conn_++;
    c->user_id = user_id;
    c->username = username.empty() ? user_id : username;
    c->remote_addr = addr;
    FakeConn *raw = c.get();
    conns_[raw->id] = std::move(c);
    if (hooks().on_connect) hooks().on_connect(state_, conn_handle(raw));
    run_queued_calls();
    return raw->id;
}

void RecordingHost::disconnect(aurora_conn_id id) {
    FakeConn *c = find_conn(id);
    if (!c) return;
    auto rooms = c->rooms;
    for (const auto &r : rooms) room_leave_impl(c, r);
    if (hooks().on_disconnect) hooks().on_disconnect(state_, conn_handle(c));
    conns_.erase(id);
    run_queued_calls();
}

aurora_status RecordingHost::join(aurora_conn_id id, const std::string &room) {
    FakeConn *c = find_conn(id);
    if (!c) return AURORA_ERR_NOT_FOUND;
    if (room.empty() || room.size() > 256) return AURORA_ERR_INVALID;
    aurora_status rc = room_join_impl(c, room);
    run_queued_calls();
    return rc;
}

aurora_status RecordingHost::leave(aurora_conn_id id, const std::string &room) {
    FakeConn *c = find_conn(id);
    if (!c) return AURORA_ERR_NOT_FOUND;
    aurora_status rc = room_leave_impl(c, room);
    run_queued_calls();
    return rc;
}

std::set<std::string> RecordingHost::rooms_of(aurora_conn_id id) const {
    auto it = conns_.find(id);
    return it == conns_.end() ? std::set<std::string>{} : it->second->rooms;
}

std::set<aurora_conn_id> RecordingHost::members(const std::string &room) const {
    std::set<aurora_conn_id> out;
    for (const auto &[id, c] : conns_) {
        if (c->rooms.count(room)) out.insert(id);
    }
    return out;
}

std::shared_ptr<FakeMsg> RecordingHost::message(aurora_conn_id id, const std::string &payload,
                                                const std::string &type, const std::string &ref_json, bool binary) {
    FakeConn *c = find_conn(id);
    if (!c) return nullptr;
    auto m = std::make_shared<FakeMsg>();
    m->host = this;
    m->conn = id;
    m->payload = payload;
    m->type = binary ? std::string() : type;
    m->ref_json = binary ? std::string() : ref_json;
    m->binary = binary;
    // As in aurora-host: a binary message reaches only a plugin that accepts raw messages.
    if (!hooks().on_message || (binary && !raw_messages_)) return m;
    {
        // Registered before the call: a plugin thread may resume at once.
        std::lock_guard lock(mu_);
        m->pending = true;
        pending_.insert(m);
    }
    aurora_verdict v = hooks().on_message(state_, conn_handle(c), reinterpret_cast<aurora_msg *>(m.get()));
    {
        std::lock_guard lock(mu_);
        if (v != AURORA_PENDING) {
            pending_.erase(m);
            m->pending = false;
            m->verdict = v;
        }
    }
    run_queued_calls();
    return m;
}

// aurora-host's limits.http_max_body_bytes default.
constexpr uint64_t kDefaultMaxBody = 64 * 1024;

std::shared_ptr<FakeHttpReq> RecordingHost::http(std::shared_ptr<FakeHttpReq> req) {
    req->host = this;
    const Route *best = nullptr;
    for (const auto &r : routes_) {
        if (r.method != req->method) continue;
        bool match = r.prefix ? req->path.compare(0, r.path.size(), r.path) == 0 : req->path == r.path;
        if (match && (!best || r.path.size() > best->path.size())) best = &r;
    }
    if (!best) {
        std::lock_guard lock(mu_);
        req->replied = true;
        req->status = 404;
        req->reply_body = "{\"error\":\"not_found\"}";
        return req;
    }
    if (req->body.size() > (best->max_body_bytes ? best->max_body_bytes : kDefaultMaxBody)) {
        std::lock_guard lock(mu_);
        req->replied = true;
        req->status = 413;
        req->reply_body = "{\"error\":\"request body too large\"}";
        return req;
    }
    {
        std::lock_guard lock(mu_);
        open_requests_.insert(req);
    }
    best->handler(best->userdata, reinterpret_cast<aurora_http_req *>(req.get()));
    run_queued_calls();
    return req;
}

int32_t RecordingHost::is_ready() { return hooks().is_ready ? hooks().is_ready(state_) : 1; }

// Runs the calls queued when it starts, not the ones they (or plugin
// threads meanwhile) queue: a plugin that queues as fast as callbacks run
// would otherwise keep the caller here for ever.
size_t RecordingHost::run_queued_calls() {
    std::deque<std::function<void()>> batch;
    {
        std::lock_guard lock(mu_);
        batch.swap(calls_);
    }
    for (auto &call : batch) call();
    return batch.size() + loop_.run_once(0);
}

bool RecordingHost::wait_until(const std::function<bool()> &pred, double timeout_s) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    for (;;) {
        run_queued_calls();
        std::unique_lock lock(mu_);
        if (pred()) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        if (!calls_.empty()) continue;
        if (loop_.busy()) {
            // The plugin's descriptors and timers (ABI 1.2) need this thread:
            // wait in poll(2) for at most 5 ms at a time, and look again.
            lock.unlock();
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            loop_.run_once(static_cast<int>(std::clamp<int64_t>(left.count(), 0, 5)));
            continue;
        }
        if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) return pred();
    }
}

void RecordingHost::close() {
    if (closed_) return;
    closed_ = true;
    for (auto &w : workers_) {
        {
            std::lock_guard lock(w->mu);
            w->stop = true;
        }
        w->cv.notify_all();
    }
    for (auto &w : workers_) {
        if (w->thread.joinable()) w->thread.join();
    }
    // Queued calls always run, before any shutdown hook (as in aurora-host).
    run_queued_calls();
    {
        std::lock_guard lock(mu_);
        accepting_calls_ = false;
    }
    run_queued_calls();
    loop_.end();  // as aurora-host: no descriptor or timer callback once the loop has ended
    if (initialized_ && hooks().shutdown) hooks().shutdown(state_);
    set_listener(nullptr);
    lib_.reset();
}

}  // namespace aurora::py
