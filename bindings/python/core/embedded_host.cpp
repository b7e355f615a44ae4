#include "embedded_host.h"

namespace aurora::py {

EmbeddedHost::EmbeddedHost(const std::string &config_json) {
    char err[2048] = "";
    int code = 0;
    host_ = aurora_host_create(config_json.data(), config_json.size(), err, sizeof err, &code);
    if (!host_) throw StartError(err, code);
    port_ = aurora_host_port(host_);
}

EmbeddedHost::~EmbeddedHost() { stop(); }

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
