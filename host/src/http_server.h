// The HTTP side of the service thread: the host's paths (/health, /ready,
// /metrics), plugin routes whose replies may come later from any thread,
// and static files from web_root with no way out of it. lws parses; this
// part decides and answers.
//
// THREADS: [service], all of it, except routes (HttpRouter: added during
// init) and a dispatched request, which its plugin may read from any thread
// until it replies (aurora_http_req).
#pragma once

#include <uv.h>
#include <libwebsockets.h>

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "http_router.h"

namespace aurora::host {
class Host;
}

// An HTTP request. Created and routed on the service thread, and shared:
// the service thread holds the connection's current request
// (HttpServer::reqs_), and a plugin route holds it from dispatch until its
// reply is applied (HttpServer::in_plugin_). Whoever lets go last frees it,
// so a request the host stopped serving (the client left, a 413 or 408
// replaced it) stays valid for the plugin thread that still reads it; its
// reply is then discarded. The plugin may read its fields from any thread
// until it calls http_reply.
struct aurora_http_req {
    lws *wsi = nullptr;  // [service] nullptr once abandoned: the reply, if any, goes nowhere
    std::string method, path, query, body, remote_addr;
    std::vector<std::pair<std::string, std::string>> headers;  // lower-case names
    std::unordered_map<std::string, std::string> query_params;
    const HttpRoute *route = nullptr;
    bool dispatched = false;   // [service] handed to the plugin, awaiting http_reply
    bool close_after = false;  // [service] close the connection once the reply is written
    bool head_only = false;    // [service] HEAD: the reply's headers without its body
    uint64_t body_deadline_ms = 0;  // [service] loop clock: the whole body must have arrived by then
    // [service] the reply, once known
    bool reply_ready = false;
    uint16_t status = 0;
    std::string content_type, extra_headers, reply_body;
};

namespace aurora::host {

using HttpReqPtr = std::shared_ptr<aurora_http_req>;

class HttpServer {
public:
    explicit HttpServer(Host &host) : host_(host) {}

    HttpRouter &router() { return router_; }  // [main] plugins add routes during init

    // lws's callbacks for one HTTP connection (wsi).
    int on_request(lws *wsi, const char *uri);
    int on_body(lws *wsi, const void *in, size_t len);
    int on_body_done(lws *wsi);
    // A route's body limits (http_route_limits), else the host's.
    uint64_t max_body(const HttpRoute *route) const;
    uint32_t body_timeout_ms(const HttpRoute *route) const;
    int on_writeable(lws *wsi);
    void on_closed(lws *wsi);

    // A plugin's reply (api http_reply), on the service thread.
    void apply_reply(aurora_http_req *req, uint16_t status, std::string content_type, std::string extra,
                     std::string body);
    // Requests handed to plugins whose reply is not written yet.
    bool in_flight() const;

private:
    int respond(lws *wsi, uint16_t status, std::string_view content_type, std::string body,
                std::string extra_headers = {});
    void dispatch(const HttpReqPtr &req);
    int serve_static(lws *wsi, std::string_view path);
    HttpReqPtr make_request(lws *wsi, std::string method, std::string path);
    void abandon(lws *wsi);  // the connection's current request is no longer served

    Host &host_;
    HttpRouter router_;
    std::unordered_map<lws *, HttpReqPtr> reqs_;                // each connection's current request
    std::unordered_map<aurora_http_req *, HttpReqPtr> in_plugin_;  // dispatched, until the reply is applied
};

}  // namespace aurora::host
