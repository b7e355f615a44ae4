// The HTTP side of the service thread: /health, /ready, /metrics, plugin
// routes with replies that may come later from any thread, static files from
// web_root with no way out of it.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "host.h"
#include "json_text.h"
#include "log.h"

namespace fs = std::filesystem;

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

bool has_body(std::string_view method) { return method == "POST" || method == "PUT" || method == "PATCH"; }

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
    "content-security-policy: default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'\r\n"
    "x-content-type-options: nosniff\r\n"
    "referrer-policy: no-referrer\r\n";

}  // namespace

std::unique_ptr<aurora_http_req> Host::make_request(lws *wsi, std::string method, std::string path) {
    auto req = std::make_unique<aurora_http_req>();
    req->wsi = wsi;
    req->method = std::move(method);
    req->path = std::move(path);
    req->remote_addr = client_address(wsi);
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

int Host::on_http(lws *wsi, const char *uri) {
    m_.http_requests->add(1);
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

    if (draining_) return respond(wsi, 503, "application/json", "{\"error\":\"shutting down\"}");

    if (path == "/health") {
        // The pid tells the service processes of a `workers` > 1 host apart.
        return respond(wsi, 200, "application/json",
                       "{\"status\":\"ok\",\"pid\":" + std::to_string(getpid()) + "}");
    }
    if (path == "/ready") {
        std::string not_ready;
        for (auto &p : plugins_) {
            if (p->hooks.is_ready && !p->hooks.is_ready(p->state)) {
                if (!not_ready.empty()) not_ready += ',';
                append_json_string(not_ready, p->name);
            }
        }
        if (not_ready.empty()) return respond(wsi, 200, "application/json", "{\"status\":\"ready\"}");
        return respond(wsi, 503, "application/json", "{\"status\":\"not_ready\",\"plugins\":[" + not_ready + "]}");
    }
    if (path == "/metrics") {
        refresh_memory_metrics();
        return respond(wsi, 200, "text/plain; version=0.0.4; charset=utf-8", registry_.render());
    }

    for (const HttpRoute &r : routes_) {
        bool match = r.prefix ? path.starts_with(r.path) : path == r.path;
        if (!match) continue;
        if (r.method != method && !(method == "HEAD" && r.method == "GET")) {
            // The path exists with another method: keep looking, else 405.
            bool other = std::any_of(routes_.begin(), routes_.end(), [&](const HttpRoute &o) {
                return o.method == method && (o.prefix ? path.starts_with(o.path) : path == o.path);
            });
            if (other) continue;
            if (method == "OPTIONS") break;  // CORS preflight: plugins that want it route OPTIONS
            return respond(wsi, 405, "application/json", "{\"error\":\"method not allowed\"}",
                           "allow: " + r.method + "\r\n");
        }
        auto req = make_request(wsi, method, path);
        req->route = &r;
        aurora_http_req *raw = req.get();
        http_reqs_[wsi] = std::move(req);
        if (has_body(method)) {
            int clen = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
            long long declared = 0;
            if (clen > 0) {
                char buf[32] = {0};
                lws_hdr_copy(wsi, buf, sizeof buf, WSI_TOKEN_HTTP_CONTENT_LENGTH);
                declared = std::atoll(buf);
            }
            if (declared > static_cast<long long>(cfg_.limits.http_max_body_bytes)) {
                http_reqs_.erase(wsi);
                respond(wsi, 413, "application/json", "{\"error\":\"request body too large\"}");
                http_reqs_[wsi]->close_after = true;  // never read the body
                return 0;
            }
            if (declared > 0) return 0;  // wait for the body (on_http_body / on_http_body_done)
        }
        dispatch_http(raw);
        return 0;
    }

    if (method == "GET" || method == "HEAD") return serve_static(wsi, path);
    return respond(wsi, 404, "application/json", "{\"error\":\"not found\"}");
}

int Host::on_http_body(lws *wsi, const void *in, size_t len) {
    auto it = http_reqs_.find(wsi);
    if (it == http_reqs_.end()) return 0;
    aurora_http_req *req = it->second.get();
    if (req->body.size() + len > cfg_.limits.http_max_body_bytes) {
        // Body larger than it said (or chunked): stop reading it, answer, close.
        http_reqs_.erase(it);
        respond(wsi, 413, "application/json", "{\"error\":\"request body too large\"}");
        http_reqs_[wsi]->close_after = true;
        return 0;
    }
    if (req->close_after) return 0;  // the 413 is on its way; drop the rest
    req->body.append(static_cast<const char *>(in), len);
    return 0;
}

int Host::on_http_body_done(lws *wsi) {
    auto it = http_reqs_.find(wsi);
    if (it != http_reqs_.end() && !it->second->dispatched) dispatch_http(it->second.get());
    return 0;
}

void Host::dispatch_http(aurora_http_req *req) {
    req->dispatched = true;
    const HttpRoute *r = req->route;
    r->handler(r->userdata, req);  // the reply may already be set when this returns
}

void Host::http_apply_reply(aurora_http_req *req, uint16_t status, std::string content_type, std::string extra,
                            std::string body) {
    if (auto d = detached_reqs_.find(req); d != detached_reqs_.end()) {
        detached_reqs_.erase(d);  // the client left before the answer
        return;
    }
    req->reply_ready = true;
    req->status = status;
    req->content_type = std::move(content_type);
    req->extra_headers = std::move(extra);
    req->reply_body = std::move(body);
    if (req->wsi) lws_callback_on_writable(req->wsi);
}

int Host::respond(lws *wsi, uint16_t status, std::string_view content_type, std::string body,
                  std::string extra_headers) {
    auto req = std::make_unique<aurora_http_req>();
    req->wsi = wsi;
    req->dispatched = true;
    req->reply_ready = true;
    req->status = status;
    req->content_type = content_type;
    req->reply_body = std::move(body);
    req->extra_headers = std::move(extra_headers);
    http_reqs_[wsi] = std::move(req);
    lws_callback_on_writable(wsi);
    return 0;
}

int Host::on_http_writeable(lws *wsi) {
    auto it = http_reqs_.find(wsi);
    if (it == http_reqs_.end() || !it->second->reply_ready) return 0;
    std::unique_ptr<aurora_http_req> req = std::move(it->second);
    http_reqs_.erase(it);

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
    std::memcpy(p, req->reply_body.data(), req->reply_body.size());
    p += req->reply_body.size();
    if (lws_write(wsi, start, static_cast<size_t>(p - start), LWS_WRITE_HTTP_FINAL) < 0) return -1;
    maybe_finish_drain();
    if (req->close_after || draining_) return -1;  // no keep-alive: shutting down, or a body left unread
    if (lws_http_transaction_completed(wsi)) return -1;
    return 0;
}

void Host::on_http_closed(lws *wsi) {
    auto it = http_reqs_.find(wsi);
    if (it == http_reqs_.end()) return;
    struct FinishCheck {  // whatever happens below, a drain may now be complete
        Host *h;
        ~FinishCheck() { h->maybe_finish_drain(); }
    } check{this};
    std::unique_ptr<aurora_http_req> req = std::move(it->second);
    http_reqs_.erase(it);
    if (req->dispatched && !req->reply_ready && req->route) {
        // The plugin still holds it and will call http_reply: keep it until then.
        req->wsi = nullptr;
        aurora_http_req *raw = req.get();
        detached_reqs_[raw] = std::move(req);
    }
}

int Host::serve_static(lws *wsi, std::string_view raw_path) {
    if (cfg_.web_root.empty()) return respond(wsi, 404, "application/json", "{\"error\":\"not found\"}");
    // The path is decoded once (by lws) and free of NULs (on_http). Refuse
    // backslashes and any ".." segment outright; the canonical-path check
    // below is the second fence.
    std::optional<std::string> decoded(std::in_place, raw_path);
    if (decoded->empty() || decoded->front() != '/' || decoded->find('\\') != std::string::npos)
        return respond(wsi, 400, "application/json", "{\"error\":\"bad path\"}");
    std::string_view rest(*decoded);
    while (!rest.empty()) {
        size_t slash = rest.find('/', 1);
        std::string_view seg = rest.substr(1, slash == std::string_view::npos ? std::string_view::npos : slash - 1);
        if (seg == "..") return respond(wsi, 400, "application/json", "{\"error\":\"bad path\"}");
        rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
    }
    std::string rel = decoded->substr(1);
    if (rel.empty() || decoded->back() == '/') rel += "index.html";
    std::error_code ec;
    fs::path full = fs::weakly_canonical(fs::path(cfg_.web_root) / rel, ec);
    std::string full_s = full.string();
    if (ec || !(full_s == cfg_.web_root || full_s.starts_with(cfg_.web_root + "/")))
        return respond(wsi, 404, "application/json", "{\"error\":\"not found\"}");
    if (fs::is_directory(full, ec)) {
        full /= "index.html";
        full_s = full.string();
    }
    if (!fs::is_regular_file(full, ec)) return respond(wsi, 404, "application/json", "{\"error\":\"not found\"}");
    int n = lws_serve_http_file(wsi, full_s.c_str(), mime_type(full_s), kStaticHeaders,
                                static_cast<int>(sizeof kStaticHeaders - 1));
    return n < 0 ? -1 : 0;  // >0: sent, and lws already completed the transaction
}

}  // namespace aurora::host
