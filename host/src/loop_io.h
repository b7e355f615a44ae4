// Plugins' descriptors, timers and before-sleep calls on the service loop
// (ABI 1.2: io_watch, timer_start, call_before_sleep).
//
// A plugin's client library (hiredis's async API) runs on the host's own
// libuv loop: its descriptor is a uv_poll handle, its deadlines uv timers,
// and what many hooks of one iteration queued goes out in one write before
// the loop sleeps (run_before_sleep, called by Outbound's prepare handle
// ahead of the sockets' writes, as Redis' beforeSleep does).
//
// LIFETIME. Each aurora_io / aurora_timer is owned here and handed to the
// plugin as an opaque pointer until it stops it. The libuv handle inside
// lives on its own (freed in its close callback), so stopping from inside
// the handle's own callback is safe. end() closes every libuv handle when
// the loop is about to go (no callback runs after it); the plugin-visible
// objects stay until clear(), after the plugins' shutdown hooks, so a
// plugin may still stop them there.
//
// THREADS: [service], or [main] while the loop is not running (init,
// shutdown, ~Host). The API functions check which (loop_api.cpp).
#pragma once

#include <aurora/host_api.h>
#include <uv.h>

#include <memory>
#include <unordered_map>
#include <unordered_set>
#include <vector>

struct aurora_io {
    aurora_plugin_ctx *owner = nullptr;
    int fd = -1;
    uint32_t events = 0;
    aurora_io_fn fn = nullptr;
    void *arg = nullptr;
    uv_poll_t *poll = nullptr;  // nullptr once the loop has ended
};

struct aurora_timer {
    aurora_plugin_ctx *owner = nullptr;
    aurora_timer_fn fn = nullptr;
    void *arg = nullptr;
    uv_timer_t *timer = nullptr;  // nullptr once the loop has ended
};

namespace aurora::host {

class LoopIo {
public:
    void start(uv_loop_t *loop) { loop_ = loop; }

    aurora_io *watch(aurora_plugin_ctx *owner, int fd, uint32_t events, aurora_io_fn fn, void *arg);
    aurora_status set(aurora_io *io, uint32_t events);
    void stop(aurora_io *io);
    aurora_timer *timer(aurora_plugin_ctx *owner, uint64_t after_ms, uint64_t repeat_ms, aurora_timer_fn fn,
                        void *arg);
    void stop(aurora_timer *t);

    aurora_status before_sleep(void (*fn)(void *), void *arg);
    void run_before_sleep();  // [service] every queued call, and what they queue

    bool known(const aurora_io *io) const { return ios_.count(const_cast<aurora_io *>(io)) != 0; }
    bool known(const aurora_timer *t) const { return timers_.count(const_cast<aurora_timer *>(t)) != 0; }
    size_t watches() const { return ios_.size(); }
    size_t timers() const { return timers_.size(); }

    // The loop is about to end: closes every libuv handle (the loop runs
    // their close callbacks later). No callback runs after this; watch,
    // timer and before_sleep refuse. Idempotent.
    void end();
    // After the plugins' shutdown hooks: frees what no plugin stopped.
    void clear();

private:
    uv_loop_t *loop_ = nullptr;
    bool ended_ = false;
    std::unordered_map<aurora_io *, std::unique_ptr<aurora_io>> ios_;
    std::unordered_set<int> fds_;  // one watch per descriptor (libuv's rule)
    std::unordered_map<aurora_timer *, std::unique_ptr<aurora_timer>> timers_;
    std::vector<std::pair<void (*)(void *), void *>> before_sleep_, running_;
};

}  // namespace aurora::host
