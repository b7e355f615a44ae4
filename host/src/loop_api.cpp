// io_watch, io_set, io_stop, timer_start, timer_stop, call_before_sleep:
// argument and thread checks, then LoopIo. Who may call is written in
// aurora/host_api.h: the service thread; the main thread while the plugin's
// init runs; and, for the two stops, while its shutdown hook runs.
#include "loop_api.h"

#include <string>
#include <thread>

#include "host.h"
#include "log.h"

namespace aurora::host {

namespace {

bool allowed(aurora_plugin_ctx *self, const char *fn, bool stopping) {
    if (self->host->on_service_thread()) return true;
    // The flags are the main thread's: read them only there (a thread the
    // plugin spawned during init is not init).
    if (std::this_thread::get_id() == self->main_thread && (self->in_init || (stopping && self->in_shutdown)))
        return true;
    Logger::instance().write(AURORA_LOG_ERROR, self->name, 0,
                             std::string(fn) + " called off the service thread: refused (see aurora/host_api.h)");
    return false;
}

LoopIo &loop(aurora_plugin_ctx *self) { return self->host->loop_io(); }

aurora_io *api_io_watch(aurora_plugin_ctx *self, int fd, uint32_t events, aurora_io_fn fn, void *arg) {
    if (!self || !allowed(self, "io_watch", false)) return nullptr;
    aurora_io *io = loop(self).watch(self, fd, events, fn, arg);
    if (!io)
        Logger::instance().write(AURORA_LOG_ERROR, self->name, 0,
                                 "io_watch(" + std::to_string(fd) + ") refused: bad descriptor or events, a second "
                                 "watch of it, or the loop has ended");
    return io;
}

aurora_status api_io_set(aurora_io *io, uint32_t events) {
    if (!io || !io->owner || !allowed(io->owner, "io_set", false)) return io ? AURORA_ERR_WRONG_THREAD : AURORA_ERR_INVALID;
    if (!loop(io->owner).known(io)) return AURORA_ERR_INVALID;
    return loop(io->owner).set(io, events);
}

void api_io_stop(aurora_io *io) {
    if (!io || !io->owner || !allowed(io->owner, "io_stop", true)) return;
    loop(io->owner).stop(io);
}

aurora_timer *api_timer_start(aurora_plugin_ctx *self, uint64_t after_ms, uint64_t repeat_ms, aurora_timer_fn fn,
                              void *arg) {
    if (!self || !allowed(self, "timer_start", false)) return nullptr;
    return loop(self).timer(self, after_ms, repeat_ms, fn, arg);
}

void api_timer_stop(aurora_timer *t) {
    if (!t || !t->owner || !allowed(t->owner, "timer_stop", true)) return;
    loop(t->owner).stop(t);
}

aurora_status api_call_before_sleep(aurora_plugin_ctx *self, void (*fn)(void *), void *arg) {
    if (!self || !fn) return AURORA_ERR_INVALID;
    if (!allowed(self, "call_before_sleep", false)) return AURORA_ERR_WRONG_THREAD;
    return loop(self).before_sleep(fn, arg);
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

}  // namespace aurora::host
