// The recording host's service loop for ABI 1.2 (io_watch, timer_start,
// call_before_sleep): poll(2) over the plugin's descriptors, a list of
// timers, the before-sleep calls. The recording host has no loop of its own:
// its service thread is the Python caller, so run_once() is called wherever
// that thread waits (RecordingHost::wait_until, run_queued_calls).
//
// The handles given to the plugin are this file's Watch and Timer, cast to
// the ABI's opaque types (aurora-host defines its own behind the same names).
//
// THREADS: [service] (or [main] in the plugin's init and shutdown, as in
// aurora-host: the caller checks).
#pragma once

#include <aurora/host_api.h>

#include <chrono>
#include <memory>
#include <vector>

namespace aurora::py {

class RecordingLoop {
public:
    using Clock = std::chrono::steady_clock;

    // `owner`: whoever drives this loop, given back by owner_of (the ABI's
    // calls on a handle get only the handle).
    explicit RecordingLoop(void *owner) : owner_(owner) {}
    static void *owner_of(const aurora_io *io) { return reinterpret_cast<const Watch *>(io)->owner; }
    static void *owner_of(const aurora_timer *t) { return reinterpret_cast<const Timer *>(t)->owner; }

    aurora_io *watch(int fd, uint32_t events, aurora_io_fn fn, void *arg);
    aurora_status set(aurora_io *io, uint32_t events);
    void stop(aurora_io *io);
    aurora_timer *timer(uint64_t after_ms, uint64_t repeat_ms, aurora_timer_fn fn, void *arg);
    void stop(aurora_timer *t);
    aurora_status before_sleep(void (*fn)(void *), void *arg);

    // Polls the descriptors for at most timeout_ms (0: only what is ready),
    // runs their callbacks, the timers that are due, then the before-sleep
    // calls. Returns how many callbacks ran.
    size_t run_once(int timeout_ms);
    bool busy() const { return !watches_.empty() || !timers_.empty() || !calls_.empty(); }
    // No callback runs after this (the host is closing).
    void end() { ended_ = true; }

private:
    struct Watch {
        void *owner;
        int fd;
        uint32_t events;
        aurora_io_fn fn;
        void *arg;
    };
    struct Timer {
        void *owner;
        Clock::time_point due;
        uint64_t repeat_ms;
        aurora_timer_fn fn;
        void *arg;
        bool armed;
    };
    size_t run_before_sleep();

    void *owner_;
    bool ended_ = false;
    std::vector<std::unique_ptr<Watch>> watches_;
    std::vector<std::unique_ptr<Timer>> timers_;
    std::vector<std::pair<void (*)(void *), void *>> calls_;
};

}  // namespace aurora::py
