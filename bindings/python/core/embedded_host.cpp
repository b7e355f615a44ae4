#include "embedded_host.h"

#include <pybind11/pybind11.h>

namespace aurora::py {

EmbeddedHost::EmbeddedHost(const std::string &config_json) {
    char err[2048] = "";
    int code = 0;
    host_ = aurora_host_create(config_json.data(), config_json.size(), err, sizeof err, &code);
    if (!host_) throw StartError(err, code);
    port_ = aurora_host_port(host_);
}

EmbeddedHost::~EmbeddedHost() {
    // Dropped by the garbage collector without stop(): the GIL is held here,
    // and the service thread may need it (python_policy) to finish draining.
    if (Py_IsInitialized() && PyGILState_Check()) {
        pybind11::gil_scoped_release release;
        stop();
    } else {
        stop();
    }
}

void EmbeddedHost::start() {
    if (started_ || !host_) throw std::runtime_error("the host was already started");
    started_ = true;
    thread_ = std::thread([this] {
        exit_code_ = aurora_host_run(host_);
        finished_ = true;
    });
}

int EmbeddedHost::stop() {
    if (!host_) return exit_code_;
    aurora_host_stop(host_);  // before run, it makes run return at once
    if (thread_.joinable()) thread_.join();
    aurora_host_destroy(host_);  // plugins' shutdown hooks, unload
    host_ = nullptr;
    return exit_code_;
}

}  // namespace aurora::py
