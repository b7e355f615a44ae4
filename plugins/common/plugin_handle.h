// What every plugin holds on to: the host's API table and its own handle,
// with the one logging helper the bundled plugins share.
//
//     struct MyState : aurora::plugin::PluginHandle { ... };
//     st->host = host; st->self = self;        // in init
//     st->log(AURORA_LOG_WARN, "redis down: %s", why.c_str());
//
// and describe(), the plugin's descriptor with its size and ABI filled in
// (C++ cannot leave hooks out of a designated initializer without warnings):
//
//     extern "C" AURORA_EXPORT const aurora_plugin *aurora_plugin_entry(void) {
//         static const aurora_plugin d = [] {
//             aurora_plugin p = aurora::plugin::describe("my_plugin", "1.0.0", "does one thing");
//             p.init = my_init;  p.shutdown = my_shutdown;  p.on_message = my_on_message;
//             return p;
//         }();
//         return &d;
//     }
//
// Thread: any (host->log_msg is). Messages longer than 1 KiB are cut.
#pragma once

#include <aurora/host_api.h>
#include <aurora/plugin.h>

#include <cstdarg>
#include <cstdio>
#include <memory>
#include <string>

namespace aurora::plugin {

struct PluginHandle {
    const aurora_host_api *host = nullptr;
    aurora_plugin_ctx *self = nullptr;

    void log(aurora_log_level level, const char *fmt, ...) const AURORA_PRINTF(3, 4) {
        if (!host->log_enabled(self, level)) return;
        char buf[1024];
        va_list ap;
        va_start(ap, fmt);
        std::vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        host->log_msg(self, level, "%s", buf);
    }
    void log(aurora_log_level level, const std::string &text) const { host->log_msg(self, level, "%s", text.c_str()); }
};

// The plugin's state crosses the ABI as a void*: handed over in init
// (*state_out = give_state(std::move(p))), taken back in shutdown
// (take_state<T>(state) frees it when it goes out of scope).
template <typename T>
void *give_state(std::unique_ptr<T> p) {
    return p.release();
}
template <typename T>
std::unique_ptr<T> take_state(void *state) {
    return std::unique_ptr<T>(static_cast<T *>(state));
}

inline aurora_plugin describe(const char *name, const char *version, const char *description) {
    aurora_plugin p{};
    p.struct_size = sizeof(aurora_plugin);
    p.abi_major = AURORA_ABI_MAJOR;
    p.abi_minor = AURORA_ABI_MINOR;
    p.name = name;
    p.version = version;
    p.description = description;
    return p;
}

}  // namespace aurora::plugin
