// The HTTP side of the service thread (http_server.h).
#include "http_server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "host.h"
#include "json_text.h"
#include "static_path.h"
#include "log.h"

namespace aurora::host {

namespace {

const char *method_name(int m) {
    switch (m) {
    case LWSHUMETH_GET: return "GET";
    case LWSHUMETH_POST: return "POST";
    case LWSHUMETH_OPTIONS: return "OPTIONS";
    case LWSHUMETH_PUT: return "PUT";
    case LWSHUMETH_PATCH: return "PATCH";
    case LWSHUMETH_DELETE: return "DELETE";
    case LWSHUMETH_HEAD: return "HEAD";
    default: return "OTHER";
    }
}

// The declared body of a request: Content-Length (digits only), or -1 for
// "unknown length" (chunked), 0 for none; nullopt if the header is garbage.
std::optional<long long> declared_body(lws *wsi) {
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
    if (n > 0) {
        char buf[32] = {0};
        if (n >= static_cast<int>(sizeof buf)) return std::nullopt;
        lws_hdr_copy(wsi, buf, sizeof buf, WSI_TOKEN_HTTP_CONTENT_LENGTH);
        std::string_view v(buf);
        if (v.empty() || v.size() > 18 || v.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
        return std::atoll(buf);
    }
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) return -1;
    return 0;
}

bool is_head(lws *wsi) {
    char *uri = nullptr;
    int len = 0;
    return lws_http_get_uri_and_method(wsi, &uri, &len) == LWSHUMETH_HEAD;
}

std::string lower(std::string s) {
    for (char &c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// RFC 7230 token characters.
bool valid_header_name(std::string_view n) {
    if (n.empty()) return false;
    for (char c : n) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
        if (!ok) return false;
    }
    return true;
}

const char *mime_type(const std::string &path) {
    static const std::pair<const char *, const char *> types[] = {
        {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},   {".json", "application/json"},
        {".svg", "image/svg+xml"},             {".png", "image/png"},
        {".ico", "image/x-icon"},              {".txt", "text/plain; charset=utf-8"},
        {".webmanifest", "application/manifest+json"},
    };
    for (const auto &[ext, type] : types) {
        if (path.size() >= std::strlen(ext) && path.compare(path.size() - std::strlen(ext), std::string::npos, ext) == 0)
            return type;
    }
    return "application/octet-stream";
}

const char kStaticHeaders[] =
    "content-security-policy: default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: blob:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'\r\n"
    "x-content-type-options: nosniff\r\n"
    "referrer-policy: no-referrer\r\n";

}  // namespace

HttpReqPtr HttpServer::make_request(lws *wsi, std::string method, std::string path) {
    auto req = std::make_shared<aurora_http_req>();
    req->wsi = wsi;
    req->method = std::move(method);
    req->path = std::move(path);
    req->remote_addr = host_.client_address(wsi);
    // Every standard header now, so the plugin may read them from any thread.
    for (int t = 0; t < WSI_TOKEN_COUNT; ++t) {
        auto tok = static_cast<enum lws_token_indexes>(t);
        if (tok == WSI_TOKEN_HTTP_URI_ARGS) continue;
        int n = lws_hdr_total_length(wsi, tok);
        const unsigned char *name = lws_token_to_string(tok);
        if (n <= 0 || !name) continue;
        std::string value(static_cast<size_t>(n) + 1, '\0');
        int got = lws_hdr_copy(wsi, value.data(), n + 1, tok);
        if (got < 0) continue;
        value.resize(static_cast<size_t>(got));
        std::string hname = lower(reinterpret_cast<const char *>(name));
        if (!hname.empty() && hname.back() == ':') hname.pop_back();
        if (hname.empty() || hname.front() == ':' || hname.find(' ') != std::string::npos) continue;
        req->headers.emplace_back(std::move(hname), std::move(value));
    }
    // Query arguments (lws stores them decoded, one fragment per argument).
    char frag[4096];
    for (int i = 0;; ++i) {
        int n = lws_hdr_copy_fragment(wsi, frag, sizeof frag, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0) break;
        std::string_view kv(frag, static_cast<size_t>(n));
        if (!req->query.empty()) req->query += '&';
        req->query += kv;
        size_t eq = kv.find('=');
        std::string key(kv.substr(0, eq));
        std::string val = eq == std::string_view::npos ? std::string() : std::string(kv.substr(eq + 1));
        req->query_params.try_emplace(std::move(key), std::move(val));
    }
    return req;
}

int HttpServer::on_request(lws *wsi, const char *uri) {
    host_.m().http_requests->add(1);
    char *uri_ptr = nullptr;
    int uri_len = 0;
    int meth = lws_http_get_uri_and_method(wsi, &uri_ptr, &uri_len);
    std::string method = method_name(meth);
    // lws has percent-decoded the path. An encoded NUL ("%00") never gets
    // here from the front door (400); on later requests of a keep-alive
    // connection lws itself either drops the connection or cuts the path at
    // the NUL (a prefix of what was asked, never more).
    std::string path = uri_ptr && uri_len > 0 ? std::string(uri_ptr, static_cast<size_t>(uri_len))
                                              : std::string(uri ? uri : "/");
    if (path.empty() || path.find('\0') != std::string::npos || path.front() != '/')
        return respond(wsi, 400, "application/json", "{\"error\":\"bad path\"}");
    std::optional<long long> body = declared_body(wsi);
    if (!body) return respond(wsi, 400, "application/json", "{\"error\":\"bad content-length\"}");
    // A route may have limits of its own (http_route_limits: uploads); the
    // host's paths and static files have the host's.
    const HttpRouter::Match m = router_.match(method, path);
    if (*body > 0 && static_cast<uint64_t>(*body) > max_body(m.route))  // -1: chunked, counted as it comes
        return respond(wsi, 413, "application/json", "{\"error\":\"request body too large\"}");

    if (host_.draining()) return respond(wsi, 503, "application/json", "{\"error\":\"shutting down\"}");

    const HostPath own = host_path(path);
    if ((own == HostPath::Health || own == HostPath::Ready || own == HostPath::Metrics) && method != "GET" &&
        method != "HEAD")
        return respond(wsi, 405, "application/json", "{\"error\":\"method not allowed\"}", "allow: GET, HEAD\r\n");
    switch (own) {
    case HostPath::Health:
        // The pid tells the service processes of a `workers` > 1 host apart.
        return respond(wsi, 200, "application/json",
                       "{\"status\":\"ok\",\"pid\":" + std::to_string(getpid()) + "}");
    case HostPath::Ready: {
        std::string not_ready = host_.plugins().not_ready();
        if (not_ready.empty()) return respond(wsi, 200, "application/json", "{\"status\":\"ready\"}");
        return respond(wsi, 503, "application/json", "{\"status\":\"not_ready\",\"plugins\":[" + not_ready + "]}");
    }
    case HostPath::Metrics:
        return respond(wsi, 200, "text/plain; version=0.0.4; charset=utf-8", host_.render_metrics());
    case HostPath::WebSocket:  // "/" is also the web client's index (a WebSocket upgrade never comes here)
    case HostPath::None: break;
    }

    if (m.wrong_method)
        return respond(wsi, 405, "application/json", "{\"error\":\"method not allowed\"}", "allow: " + m.allow + "\r\n");
    if (m.route) {
        HttpReqPtr req = make_request(wsi, method, path);
        req->route = m.route;
        req->head_only = method == "HEAD";
        reqs_[wsi] = req;
        if (*body != 0) {
            // Whatever the method, a body is read whole (bounded in size and
            // time) before the plugin sees the request: the plugin never
            // holds a request whose connection is still being read.
            req->body_deadline_ms = host_.now_ms() + body_timeout_ms(m.route);
            // Declared and within the limit, but only a claim: memory grows
            // with what arrives, past the first 256 KiB.
            if (*body > 0) req->body.reserve(std::min<size_t>(static_cast<size_t>(*body), 256 * 1024));
            return 0;  // on_body / on_body_done
        }
        dispatch(req);
        return 0;
    }

    if (method == "GET" || method == "HEAD") {
        if (*body != 0) return respond(wsi, 400, "application/json", "{\"error\":\"unexpected request body\"}");
        return serve_static(wsi, path);
    }
    return respond(wsi, 404, "application/json", "{\"error\":\"not found\"}");
}

uint64_t HttpServer::max_body(const HttpRoute *route) const {
    return route && route->max_body_bytes ? route->max_body_bytes : host_.config().limits.http_max_body_bytes;
}

uint32_t HttpServer::body_timeout_ms(const HttpRoute *route) const {
    return route && route->body_timeout_ms ? route->body_timeout_ms : host_.config().limits.http_body_timeout_ms;
}

int HttpServer::on_body(lws *wsi, const void *in, size_t len) {
    auto it = reqs_.find(wsi);
    if (it == reqs_.end()) return 0;
    aurora_http_req *req = it->second.get();
    // Answered already (by the host, before the body: it is dropped and the
    // connection closes after the reply), or not a route's request.
    if (!req->route || req->dispatched || req->reply_ready) return 0;
    if (host_.now_ms() > req->body_deadline_ms) {
        AURORA_HLOG(AURORA_LOG_INFO, 0, "http: body from %s too slow (%zu bytes in %u ms): 408",
                    req->remote_addr.c_str(), req->body.size(), body_timeout_ms(req->route));
        host_.m().http_slow_bodies->add(1);
        return respond(wsi, 408, "application/json", "{\"error\":\"request body too slow\"}");
    }
    if (req->body.size() + len > max_body(req->route))  // larger than it said, or chunked
        return respond(wsi, 413, "application/json", "{\"error\":\"request body too large\"}");
    req->body.append(static_cast<const char *>(in), len);
    return 0;
}

int HttpServer::on_body_done(lws *wsi) {
    auto it = reqs_.find(wsi);
    if (it == reqs_.end()) return 0;
    const HttpReqPtr &req = it->second;
    if (req->route && !req->dispatched && !req->reply_ready) dispatch(req);
    return 0;
}

void HttpServer::dispatch(const HttpReqPtr &req) {
    req->dispatched = true;
    in_plugin_[req.get()] = req;  // the plugin's hold, until its reply is applied
    const HttpRoute *r = req->route;
    r->handler(r->userdata, req.get());  // the reply may already be applied when this returns
}

void HttpServer::abandon(lws *wsi) {
    auto it = reqs_.find(wsi);
    if (it == reqs_.end()) return;
    it->second->wsi = nullptr;  // a plugin that still holds it answers into the void
    reqs_.erase(it);
}

void HttpServer::apply_reply(aurora_http_req *raw, uint16_t status, std::string content_type, std::string extra,
                            std::string body) {
    auto it = in_plugin_.find(raw);
    if (it == in_plugin_.end()) {
        AURORA_HLOG(AURORA_LOG_ERROR, 0, "http_reply on a request that awaits no reply (answered twice?): ignored");
        return;
    }
    HttpReqPtr req = std::move(it->second);
    in_plugin_.erase(it);
    if (!req->wsi) return;  // the client left, or the host answered instead
    req->reply_ready = true;
    req->status = status;
    req->content_type = std::move(content_type);
    req->extra_headers = std::move(extra);
    req->reply_body = std::move(body);
    lws_callback_on_writable(req->wsi);
    host_.maybe_finish_drain();
}

// The host answers by itself. A request the plugin holds is abandoned; a
// request whose body is not read (or not read whole) closes the connection
// after the reply, so that no byte of that body is ever read as a request.
int HttpServer::respond(lws *wsi, uint16_t status, std::string_view content_type, std::string body,
                  std::string extra_headers) {
    bool body_pending = false;
    if (auto it = reqs_.find(wsi); it != reqs_.end()) {
        body_pending = it->second->route && !it->second->dispatched;
    } else {
        std::optional<long long> declared = declared_body(wsi);
        body_pending = !declared || *declared != 0;
    }
    abandon(wsi);
    auto req = std::make_shared<aurora_http_req>();
    req->wsi = wsi;
    req->dispatched = true;
    req->reply_ready = true;
    req->close_after = body_pending;
    req->head_only = is_head(wsi);
    req->status = status;
    req->content_type = content_type;
    req->reply_body = std::move(body);
    req->extra_headers = std::move(extra_headers);
    reqs_[wsi] = std::move(req);
    lws_callback_on_writable(wsi);
    return 0;
}

bool HttpServer::in_flight() const {
    for (const auto &[wsi, req] : reqs_) {
        if (req->dispatched && req->route && req->wsi) return true;  // a plugin still owes or is writing a reply
    }
    return false;
}

int HttpServer::on_writeable(lws *wsi) {
    auto it = reqs_.find(wsi);
    if (it == reqs_.end() || !it->second->reply_ready) return 0;
    HttpReqPtr req = std::move(it->second);
    reqs_.erase(it);

    std::vector<unsigned char> buf(LWS_PRE + 2048 + req->extra_headers.size() + req->reply_body.size());
    unsigned char *start = buf.data() + LWS_PRE, *p = start, *end = buf.data() + buf.size();
    const std::string ctype = req->content_type.empty() ? "application/json" : req->content_type;
    if (lws_add_http_common_headers(wsi, req->status, ctype.c_str(), req->reply_body.size(), &p, end)) return -1;
    // Plugin headers: "Name: value\r\n" lines.
    std::string_view extra = req->extra_headers;
    while (!extra.empty()) {
        size_t eol = extra.find("\r\n");
        std::string_view line = extra.substr(0, eol);
        extra = eol == std::string_view::npos ? std::string_view() : extra.substr(eol + 2);
        size_t colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0) continue;
        std::string name = lower(std::string(line.substr(0, colon + 1)));
        std::string_view value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        // A plugin may forward what a client sent: no response splitting, no
        // invalid names, and the host owns the framing headers.
        bool bad = !valid_header_name(std::string_view(name).substr(0, name.size() - 1)) ||
                   value.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos ||
                   name == "content-length:" || name == "transfer-encoding:" || name == "connection:";
        if (bad) {
            AURORA_HLOG(AURORA_LOG_WARN, 0, "http_reply: header line refused: %.*s", static_cast<int>(std::min<size_t>(line.size(), 80)), line.data());
            continue;
        }
        if (lws_add_http_header_by_name(wsi, reinterpret_cast<const unsigned char *>(name.c_str()),
                                        reinterpret_cast<const unsigned char *>(value.data()),
                                        static_cast<int>(value.size()), &p, end))
            return -1;
    }
    if (lws_finalize_http_header(wsi, &p, end)) return -1;
    if (!req->head_only) {  // HEAD: the same headers (content-length included), no body
        std::memcpy(p, req->reply_body.data(), req->reply_body.size());
        p += req->reply_body.size();
    }
    if (lws_write(wsi, start, static_cast<size_t>(p - start), LWS_WRITE_HTTP_FINAL) < 0) return -1;
    host_.maybe_finish_drain();
    if (req->close_after || host_.draining()) return -1;  // no keep-alive: shutting down, or a body left unread
    if (lws_http_transaction_completed(wsi)) return -1;
    return 0;
}

void HttpServer::on_closed(lws *wsi) {
    if (!reqs_.count(wsi)) return;
    abandon(wsi);
    host_.maybe_finish_drain();
}

int HttpServer::serve_static(lws *wsi, std::string_view path) {
    int status = 404;
    std::optional<std::string> file = resolve_static(host_.config().web_root, path, status);
    if (!file)
        return respond(wsi, static_cast<uint16_t>(status), "application/json",
                       status == 400 ? "{\"error\":\"bad path\"}" : "{\"error\":\"not found\"}");
    const std::string &full_s = *file;
    int n = lws_serve_http_file(wsi, full_s.c_str(), mime_type(full_s), kStaticHeaders,
                                static_cast<int>(sizeof kStaticHeaders - 1));
    return n < 0 ? -1 : 0;  // >0: sent, and lws already completed the transaction
}

}  // namespace aurora::host
