// The plugins: loading and init in order, the hooks over all of them, shutdown.
#include "plugin_set.h"

#include <cstring>

#include "conn.h"
#include "json_text.h"
#include "log.h"

void aurora_worker::wake() {
    {
        std::lock_guard lock(mu);
        woken = true;
    }
    cv.notify_all();
}

namespace aurora::host {

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

}  // namespace

bool PluginSet::load(const std::vector<PluginConfig> &plugins, Host *host, const aurora_host_api *api,
                     MetricRegistry &registry, std::string &error) {
    for (size_t i = 0; i < plugins.size(); ++i) {
        const PluginConfig &pc = plugins[i];
        auto lib = PluginLibrary::open(pc.path, error);
        if (!lib) return false;
        auto p = std::make_unique<aurora_plugin_ctx>();
        p->host = host;
        p->index = i;
        p->name = pc.name;
        p->config_json = pc.config_json;
        p->hooks = lib->hooks();
        p->lib = std::move(lib);
        for (size_t h = 0; h < static_cast<size_t>(Hook::Count); ++h) {
            std::string labels = "plugin=\"" + p->name + "\",hook=\"" + hook_name(static_cast<Hook>(h)) + "\"";
            p->hook_seconds[h] = registry.add(MetricKind::Histogram, "aurora_hook_duration_seconds",
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
        p->main_thread = std::this_thread::get_id();  // before init: before any thread of its own
        p->in_init = true;
        aurora_status st = p->hooks.init(api, p.get(), &p->state);
        p->in_init = false;
        if (st != AURORA_OK) {
            error = "plugin " + p->lib->path() + " (" + p->name + ", ABI " + p->lib->abi_version() +
                    ", host ABI " + std::to_string(AURORA_ABI_MAJOR) + "." + std::to_string(AURORA_ABI_MINOR) +
                    "): init failed with status " + std::to_string(st) + " (see its log lines above)";
            // Threads it started before failing are stopped and joined; then
            // everything else already initialised is shut down.
            stop_and_join(*p);
            p->workers.clear();
            stop_workers();
            shutdown();
            plugins_.clear();
            return false;
        }
        p->initialized = true;
        AURORA_HLOG(AURORA_LOG_INFO, 0, "plugin %s %s loaded from %s (ABI %s)", p->name.c_str(),
                    p->hooks.version ? p->hooks.version : "", p->lib->path().c_str(), p->lib->abi_version().c_str());
    }
    return true;
}

void PluginSet::stop_and_join(aurora_plugin_ctx &p) {
    for (auto &w : p.workers) {
        w->stop = true;
        w->wake();
        if (w->thread.joinable()) w->thread.join();
    }
}

void PluginSet::stop_workers() {
    // Every worker is told first, then all are joined: they stop together.
    for (auto &p : plugins_) {
        for (auto &w : p->workers) {
            w->stop = true;
            w->wake();
        }
    }
    // Joined, not freed: a plugin may still hold its aurora_worker handles
    // (e.g. to wake a thread from on_disconnect while the lws context is
    // destroyed); they stay valid until the plugins are cleared, after
    // their shutdown hooks (host_api.h, HANDLES).
    for (auto &p : plugins_) stop_and_join(*p);
}

void PluginSet::shutdown() {
    for (auto it = plugins_.rbegin(); it != plugins_.rend(); ++it) {
        auto &p = *it;
        if (p->initialized && p->hooks.shutdown) {
            p->main_thread = std::this_thread::get_id();  // an embedder may shut down from another thread
            p->in_shutdown = true;
            p->hooks.shutdown(p->state);
            p->in_shutdown = false;
        }
        p->initialized = false;
        p->state = nullptr;
    }
}

AuthOutcome PluginSet::authenticate(const aurora_handshake *hs) {
    AuthOutcome out;
    for (auto &p : plugins_) {
        if (!p->hooks.authenticate) continue;
        aurora_identity id;
        std::memset(&id, 0, sizeof id);
        id.struct_size = sizeof id;
        aurora_auth_verdict v = timed(p.get(), Hook::Authenticate,
                                      [&] { return p->hooks.authenticate(p->state, hs, &id); });
        if (v == AURORA_AUTH_ABSTAIN) continue;
        if (v == AURORA_AUTH_ACCEPT && id.user_id.ptr && id.user_id.len) {
            out.kind = AuthOutcome::Kind::Accepted;
            out.user_id.assign(id.user_id.ptr, id.user_id.len);
            if (id.username.ptr && id.username.len) out.username.assign(id.username.ptr, id.username.len);
            else out.username = out.user_id;
            return out;
        }
        out.kind = AuthOutcome::Kind::Rejected;
        out.status = id.reject_status >= 400 && id.reject_status < 600 ? id.reject_status : 401;
        out.reason = v == AURORA_AUTH_ACCEPT ? "plugin accepted without a user id"
                     : id.reject_reason.ptr  ? std::string(id.reject_reason.ptr, id.reject_reason.len)
                                             : "unauthorized";
        out.plugin = p->name;
        return out;
    }
    return out;
}

void PluginSet::connected(aurora_conn *c) {
    for (auto &p : plugins_) {
        if (p->hooks.on_connect) timed(p.get(), Hook::OnConnect, [&] { p->hooks.on_connect(p->state, c); });
    }
}

void PluginSet::disconnected(aurora_conn *c) {
    for (auto &p : plugins_) {
        if (p->hooks.on_disconnect) timed(p.get(), Hook::OnDisconnect, [&] { p->hooks.on_disconnect(p->state, c); });
    }
}

bool PluginSet::may_join(aurora_conn *c, std::string_view room) {
    aurora_str r{room.data(), room.size()};
    for (auto &p : plugins_) {
        if (!p->hooks.on_join) continue;
        aurora_verdict v = timed(p.get(), Hook::OnJoin, [&] { return p->hooks.on_join(p->state, c, r); });
        if (v == AURORA_CONTINUE) continue;
        if (v != AURORA_DROP)
            AURORA_HLOG(AURORA_LOG_ERROR, c->id, "plugin %s: on_join returned %d (only CONTINUE or DROP): refused",
                        p->name.c_str(), v);
        return false;
    }
    return true;
}

void PluginSet::left(aurora_conn *c, std::string_view room) {
    aurora_str r{room.data(), room.size()};
    for (auto &p : plugins_) {
        if (p->hooks.on_leave) timed(p.get(), Hook::OnLeave, [&] { p->hooks.on_leave(p->state, c, r); });
    }
}

std::string PluginSet::not_ready() const {
    std::string names;
    for (auto &p : plugins_) {
        if (p->hooks.is_ready && !p->hooks.is_ready(p->state)) {
            if (!names.empty()) names += ',';
            append_json_string(names, p->name);
        }
    }
    return names;
}

}  // namespace aurora::host
