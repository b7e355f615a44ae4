// The loaded plugins, in pipeline order, and the hooks run over all of them.
//
// THREADS
//   - [main] load (dlopen, init in order, unwinding on failure), and at the
//     end stop_workers then shutdown (reverse order). While a plugin's init
//     runs, its `in_init` is set: that is when the API lets it spawn
//     threads, add routes and register metrics.
//   - [service] every hook below, each timed into
//     aurora_hook_duration_seconds{plugin,hook}.
//   - A plugin's workers are its own threads (api spawn); they are woken
//     and joined by stop_workers and their handles freed with the plugin.
#pragma once

#include <aurora/host_api.h>
#include <aurora/plugin.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <vector>

#include "config.h"
#include "metrics.h"
#include "plugin_library.h"

namespace aurora::host {
class Host;
enum class Hook { Authenticate, OnConnect, OnDisconnect, OnJoin, OnLeave, OnMessage, Count };
}  // namespace aurora::host

// ---- The ABI's opaque plugin handles, defined here. ----

struct aurora_plugin_ctx {
    aurora::host::Host *host = nullptr;
    size_t index = 0;
    std::string name;
    std::string config_json;
    std::unique_ptr<aurora::host::PluginLibrary> lib;
    aurora_plugin hooks{};  // normalised copy (see PluginLibrary)
    void *state = nullptr;
    bool initialized = false;
    bool in_init = false;  // [main] spawn/http_route/metric_* are allowed only now
    bool in_shutdown = false;  // [main] its shutdown hook runs: io_stop/timer_stop are allowed
    // [main] The thread that runs init and shutdown: in_init/in_shutdown
    // mean something only there (a thread the plugin spawned in init must
    // not pass for it).
    std::thread::id main_thread;
    bool raw_messages = false;  // accept_raw_messages: sees what the host would refuse
    std::vector<std::unique_ptr<aurora_worker>> workers;
    aurora_metric *hook_seconds[static_cast<size_t>(aurora::host::Hook::Count)] = {};
};

struct aurora_worker {
    aurora_plugin_ctx *owner = nullptr;
    std::string name;
    aurora_worker_fn fn = nullptr;
    void *arg = nullptr;
    std::thread thread;
    std::atomic<bool> stop{false};
    std::mutex mu;
    std::condition_variable cv;
    bool woken = false;  // guarded by mu

    void wake();  // any thread
};

namespace aurora::host {

// What the authenticate hooks decided about an upgrade.
struct AuthOutcome {
    enum class Kind { Accepted, Rejected, NoOpinion } kind = Kind::NoOpinion;
    std::string user_id, username;  // Accepted
    unsigned status = 401;          // Rejected
    std::string reason, plugin;     // Rejected: why, and by whom
};

class PluginSet {
public:
    PluginSet() = default;
    PluginSet(const PluginSet &) = delete;
    PluginSet &operator=(const PluginSet &) = delete;

    // [main] Opens every plugin of `plugins` and runs their init in order.
    // On failure: `error` names the plugin and both ABI versions, and every
    // plugin already initialised is stopped and shut down again.
    bool load(const std::vector<PluginConfig> &plugins, Host *host, const aurora_host_api *api,
              MetricRegistry &registry, std::string &error);
    void stop_workers();  // [main] wakes and joins every worker; the handles stay valid
    void shutdown();      // [main] shutdown hooks, last plugin first
    void clear() { plugins_.clear(); }  // [main] dlclose; after shutdown

    size_t size() const { return plugins_.size(); }
    aurora_plugin_ctx *at(size_t i) const { return plugins_[i].get(); }

    // [service] The hooks, over every plugin that has them.
    AuthOutcome authenticate(const aurora_handshake *hs);
    void connected(aurora_conn *c);
    void disconnected(aurora_conn *c);
    // on_join: the first plugin that does not CONTINUE refuses the join.
    bool may_join(aurora_conn *c, std::string_view room);
    void left(aurora_conn *c, std::string_view room);
    // is_ready: the names of the plugins that are not, as JSON strings joined by ','.
    std::string not_ready() const;

    // Runs one hook and records its duration.
    template <typename F>
    static auto timed(aurora_plugin_ctx *p, Hook h, F &&f);

private:
    static void stop_and_join(aurora_plugin_ctx &p);
    std::vector<std::unique_ptr<aurora_plugin_ctx>> plugins_;
};

template <typename F>
auto PluginSet::timed(aurora_plugin_ctx *p, Hook h, F &&f) {
    auto t0 = std::chrono::steady_clock::now();
    auto finish = [&] {
        std::chrono::duration<double> d = std::chrono::steady_clock::now() - t0;
        if (aurora_metric *m = p->hook_seconds[static_cast<size_t>(h)]) m->observe(d.count());
    };
    if constexpr (std::is_void_v<decltype(f())>) {
        f();
        finish();
    } else {
        auto r = f();
        finish();
        return r;
    }
}

}  // namespace aurora::host
