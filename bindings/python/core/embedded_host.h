// aurora._core.EmbeddedHost: libaurora_host's embedding API (aurora/embed.h)
// with the service loop on a native thread of its own. No Python here: the
// bindings release the GIL around create (plugins' init may block on I/O)
// and around stop (which joins the thread).
#pragma once

#include <aurora/embed.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>

namespace aurora::py {

class EmbeddedHost {
public:
    struct StartError : std::runtime_error {
        StartError(const std::string &what, int code) : std::runtime_error(what), exit_code(code) {}
        int exit_code;
    };

    // aurora_host_create: parses the config, loads and inits the plugins,
    // binds the port. Throws StartError with the host's message.
    explicit EmbeddedHost(const std::string &config_json);
    ~EmbeddedHost();
    EmbeddedHost(const EmbeddedHost &) = delete;
    EmbeddedHost &operator=(const EmbeddedHost &) = delete;

    int port() const { return port_; }
    void start();  // aurora_host_run on a new thread; once
    // aurora_host_stop, join the thread, aurora_host_destroy. Idempotent.
    // Returns the run's exit code (0 clean).
    int stop();
    bool running() const { return started_ && !finished_; }
    int exit_code() const { return exit_code_; }

private:
    aurora_host *host_ = nullptr;
    int port_ = 0;
    std::thread thread_;
    bool started_ = false;
    std::atomic<bool> finished_{false};
    int exit_code_ = 0;
};

}  // namespace aurora::py
