// HTTP routes: the host's paths, written once, and the plugins'.
#include "http_router.h"

#include <algorithm>
#include <utility>

#include "plugin_set.h"

namespace aurora::host {

namespace {

struct HostPathEntry {
    std::string_view path;
    HostPath what;
};
constexpr HostPathEntry kHostPaths[] = {
    {"/health", HostPath::Health}, {"/ready", HostPath::Ready},     {"/metrics", HostPath::Metrics},
    {"/", HostPath::WebSocket},    {"/ws", HostPath::WebSocket},
};

bool matches(const HttpRoute &r, std::string_view path) {
    return r.prefix ? path.starts_with(r.path) : path == r.path;
}

}  // namespace

HostPath host_path(std::string_view path) {
    for (const auto &e : kHostPaths) {
        if (e.path == path) return e.what;
    }
    return HostPath::None;
}

aurora_status HttpRouter::add(HttpRoute route, std::string &error) {
    if (host_path(route.path) != HostPath::None) {
        error = route.path + " is reserved by the host";
        return AURORA_ERR_DENIED;
    }
    for (const auto &r : routes_) {
        if (r.method == route.method && r.path == route.path && r.prefix == route.prefix) {
            error = route.method + " " + route.path + " is already taken by plugin " + r.owner->name;
            return AURORA_ERR_DENIED;
        }
    }
    routes_.push_back(std::move(route));
    return AURORA_OK;
}

HttpRoute *HttpRouter::find(std::string_view method, std::string_view path, bool prefix,
                             const aurora_plugin_ctx *owner) {
    for (HttpRoute &r : routes_) {
        if (r.owner == owner && r.method == method && r.path == path && r.prefix == prefix) return &r;
    }
    return nullptr;
}

HttpRouter::Match HttpRouter::match(std::string_view method, std::string_view path) const {
    for (const HttpRoute &r : routes_) {
        if (!matches(r, path)) continue;
        if (r.method == method || (method == "HEAD" && r.method == "GET")) return {&r, false, {}};
        // The path exists with another method: keep looking, else 405.
        bool other = std::any_of(routes_.begin(), routes_.end(),
                                 [&](const HttpRoute &o) { return o.method == method && matches(o, path); });
        if (other) continue;
        if (method == "OPTIONS") break;  // CORS preflight: plugins that want it route OPTIONS
        return {nullptr, true, r.method};
    }
    return {};
}

}  // namespace aurora::host
