#include "recording_loop.h"

#include <poll.h>

#include <algorithm>

namespace aurora::py {

namespace {
template <class T>
bool holds(const std::vector<std::unique_ptr<T>> &v, const T *p) {
    return std::any_of(v.begin(), v.end(), [p](const auto &u) { return u.get() == p; });
}
template <class T>
void remove(std::vector<std::unique_ptr<T>> &v, const T *p) {
    v.erase(std::remove_if(v.begin(), v.end(), [p](const auto &u) { return u.get() == p; }), v.end());
}
}  // namespace

aurora_io *RecordingLoop::watch(int fd, uint32_t events, aurora_io_fn fn, void *arg) {
    if (ended_ || fd < 0 || !fn || (events & ~(AURORA_IO_READ | AURORA_IO_WRITE))) return nullptr;
    if (std::any_of(watches_.begin(), watches_.end(), [fd](const auto &w) { return w->fd == fd; })) return nullptr;
    watches_.push_back(std::make_unique<Watch>(Watch{owner_, fd, events, fn, arg}));
    return reinterpret_cast<aurora_io *>(watches_.back().get());
}

aurora_status RecordingLoop::set(aurora_io *io, uint32_t events) {
    auto *w = reinterpret_cast<Watch *>(io);
    if (!holds(watches_, static_cast<const Watch *>(w)) || (events & ~(AURORA_IO_READ | AURORA_IO_WRITE)))
        return AURORA_ERR_INVALID;
    w->events = events;
    return AURORA_OK;
}

void RecordingLoop::stop(aurora_io *io) { remove(watches_, reinterpret_cast<const Watch *>(io)); }

aurora_timer *RecordingLoop::timer(uint64_t after_ms, uint64_t repeat_ms, aurora_timer_fn fn, void *arg) {
    if (ended_ || !fn) return nullptr;
    timers_.push_back(std::make_unique<Timer>(
        Timer{owner_, Clock::now() + std::chrono::milliseconds(after_ms), repeat_ms, fn, arg, true}));
    return reinterpret_cast<aurora_timer *>(timers_.back().get());
}

void RecordingLoop::stop(aurora_timer *t) { remove(timers_, reinterpret_cast<const Timer *>(t)); }

aurora_status RecordingLoop::before_sleep(void (*fn)(void *), void *arg) {
    if (ended_) return AURORA_ERR_CLOSED;
    calls_.emplace_back(fn, arg);
    return AURORA_OK;
}

size_t RecordingLoop::run_before_sleep() {
    size_t ran = 0;
    while (!calls_.empty()) {
        auto batch = std::move(calls_);
        calls_.clear();
        for (auto [fn, arg] : batch) fn(arg);
        ran += batch.size();
    }
    return ran;
}

size_t RecordingLoop::run_once(int timeout_ms) {
    if (ended_) return 0;
    size_t ran = run_before_sleep();  // what the caller's hooks queued goes out before waiting
    std::vector<pollfd> fds;
    std::vector<const Watch *> owners;
    for (const auto &w : watches_) {
        short ev = static_cast<short>(((w->events & AURORA_IO_READ) ? POLLIN : 0) |
                                      ((w->events & AURORA_IO_WRITE) ? POLLOUT : 0));
        if (!ev) continue;
        fds.push_back({w->fd, ev, 0});
        owners.push_back(w.get());
    }
    for (const auto &t : timers_) {
        if (!t->armed) continue;
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(t->due - Clock::now()).count();
        timeout_ms = static_cast<int>(std::clamp<int64_t>(left, 0, timeout_ms));
    }
    if (::poll(fds.data(), fds.size(), timeout_ms) > 0) {
        for (size_t i = 0; i < fds.size(); ++i) {
            if (!fds[i].revents || !holds(watches_, owners[i])) continue;  // stopped by an earlier callback
            uint32_t ready = 0;
            if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) ready |= AURORA_IO_READ;
            if (fds[i].revents & POLLOUT) ready |= AURORA_IO_WRITE;
            ready &= owners[i]->events | AURORA_IO_READ;
            if (!ready) continue;
            owners[i]->fn(owners[i]->arg, ready);
            ++ran;
        }
    }
    auto now = Clock::now();
    std::vector<const Timer *> due;
    for (const auto &t : timers_) {
        if (t->armed && t->due <= now) due.push_back(t.get());
    }
    for (const Timer *t : due) {
        if (!holds(timers_, t)) continue;
        auto *mt = const_cast<Timer *>(t);
        if (mt->repeat_ms) {
            mt->due = now + std::chrono::milliseconds(mt->repeat_ms);
        } else {
            mt->armed = false;  // fired; the plugin still stops it
        }
        mt->fn(mt->arg);  // may stop it
        ++ran;
    }
    return ran + run_before_sleep();
}

}  // namespace aurora::py
