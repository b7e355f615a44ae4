// Which HTTP paths are the host's and which plugin route a request goes to.
//
// The host's own paths are listed once, here (kHostPaths): /health, /ready,
// /metrics, and the WebSocket endpoints / and /ws. A plugin cannot route
// any of them.
//
// THREADS: routes are added on the main thread while a plugin's init runs
// ([main]), and only read afterwards, on the service thread, so no lock.
#pragma once

#include <aurora/host_api.h>

#include <string>
#include <string_view>
#include <vector>

struct HttpRoute {
    std::string method, path;
    bool prefix = false;
    aurora_http_handler handler = nullptr;
    void *userdata = nullptr;
    aurora_plugin_ctx *owner = nullptr;
    // http_route_limits (ABI 1.3); 0: the host's limits.
    uint64_t max_body_bytes = 0;
    uint32_t body_timeout_ms = 0;
};

namespace aurora::host {

enum class HostPath { None, Health, Ready, Metrics, WebSocket };

// The host's meaning of `path` (exact match). "/" is WebSocket for an
// upgrade and the web client's index for a GET.
HostPath host_path(std::string_view path);

class HttpRouter {
public:
    // [main] AURORA_ERR_DENIED, with `error`, for a host path or a method and
    // path another plugin has.
    aurora_status add(HttpRoute route, std::string &error);
    void clear() { routes_.clear(); }
    // [main] The route `method path prefix` that `owner` added, to set its
    // limits; nullptr if it has none.
    HttpRoute *find(std::string_view method, std::string_view path, bool prefix, const aurora_plugin_ctx *owner);

    // [service] The route for `method` and `path` (HEAD is served by GET
    // routes). No route and `wrong_method`: the path exists with the method
    // `allow` only (405). Neither: no plugin serves it.
    struct Match {
        const HttpRoute *route = nullptr;
        bool wrong_method = false;
        std::string allow;
    };
    Match match(std::string_view method, std::string_view path) const;

private:
    std::vector<HttpRoute> routes_;
};

}  // namespace aurora::host
