// The recording host's io_watch, io_set, io_stop, timer_start, timer_stop,
// call_before_sleep: aurora-host's thread rules (aurora/host_api.h), over
// RecordingLoop. A refusal is recorded as an error log, as the host logs it.
#include <string>

#include "recording_host.h"

namespace aurora::py {

namespace {

RecordingHost *H(aurora_plugin_ctx *self) { return reinterpret_cast<RecordingHost *>(self); }

// The recording host's init and shutdown run on its service thread (the
// Python caller's), so that thread is the only one allowed.
bool allowed(RecordingHost *h, const char *fn) {
    if (h->on_service_thread()) return true;
    h->record_refusal(fn);
    return false;
}

template <class Handle>
RecordingHost *owner(const Handle *handle) {
    return handle ? static_cast<RecordingHost *>(RecordingLoop::owner_of(handle)) : nullptr;
}

aurora_io *api_io_watch(aurora_plugin_ctx *self, int fd, uint32_t events, aurora_io_fn fn, void *arg) {
    if (!self || !allowed(H(self), "io_watch")) return nullptr;
    return H(self)->loop_.watch(fd, events, fn, arg);
}

aurora_status api_io_set(aurora_io *io, uint32_t events) {
    RecordingHost *h = owner(io);
    if (!h) return AURORA_ERR_INVALID;
    if (!allowed(h, "io_set")) return AURORA_ERR_WRONG_THREAD;
    return h->loop_.set(io, events);
}

void api_io_stop(aurora_io *io) {
    RecordingHost *h = owner(io);
    if (!h || !allowed(h, "io_stop")) return;
    h->loop_.stop(io);
}

aurora_timer *api_timer_start(aurora_plugin_ctx *self, uint64_t after_ms, uint64_t repeat_ms, aurora_timer_fn fn,
                              void *arg) {
    if (!self || !allowed(H(self), "timer_start")) return nullptr;
    return H(self)->loop_.timer(after_ms, repeat_ms, fn, arg);
}

void api_timer_stop(aurora_timer *t) {
    RecordingHost *h = owner(t);
    if (!h || !allowed(h, "timer_stop")) return;
    h->loop_.stop(t);
}

aurora_status api_call_before_sleep(aurora_plugin_ctx *self, void (*fn)(void *), void *arg) {
    if (!self || !fn) return AURORA_ERR_INVALID;
    if (!allowed(H(self), "call_before_sleep")) return AURORA_ERR_WRONG_THREAD;
    return H(self)->loop_.before_sleep(fn, arg);
}

}  // namespace

void fill_loop_api(aurora_host_api &a) {
    a.io_watch = api_io_watch;
    a.io_set = api_io_set;
    a.io_stop = api_io_stop;
    a.timer_start = api_timer_start;
    a.timer_stop = api_timer_stop;
    a.call_before_sleep = api_call_before_sleep;
}

}  // namespace aurora::py
