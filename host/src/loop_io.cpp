#include "loop_io.h"

namespace aurora::host {

namespace {

int uv_events(uint32_t events) {
    return ((events & AURORA_IO_READ) ? UV_READABLE : 0) | ((events & AURORA_IO_WRITE) ? UV_WRITABLE : 0);
}

void free_handle(uv_handle_t *h) {
    if (h->type == UV_POLL) {
        delete reinterpret_cast<uv_poll_t *>(h);  // allocated in watch()
    } else {
        delete reinterpret_cast<uv_timer_t *>(h);  // allocated in timer()
    }
}

void close_handle(uv_handle_t *h) {
    h->data = nullptr;  // a callback already dispatched in this iteration finds nobody
    uv_close(h, free_handle);
}

void on_poll(uv_poll_t *p, int status, int events) {
    auto *io = static_cast<aurora_io *>(p->data);
    if (!io) return;
    uint32_t ready = 0;
    if (status < 0 || (events & (UV_READABLE | UV_DISCONNECT))) ready |= AURORA_IO_READ;
    if (status == 0 && (events & UV_WRITABLE)) ready |= AURORA_IO_WRITE;
    ready &= io->events | (status < 0 ? AURORA_IO_READ : 0);
    if (ready) io->fn(io->arg, ready);  // may stop io: nothing of it is touched after
}

void on_timer(uv_timer_t *t) {
    auto *timer = static_cast<aurora_timer *>(t->data);
    if (timer) timer->fn(timer->arg);
}

}  // namespace

aurora_io *LoopIo::watch(aurora_plugin_ctx *owner, int fd, uint32_t events, aurora_io_fn fn, void *arg) {
    if (!loop_ || ended_ || fd < 0 || !fn || (events & ~(AURORA_IO_READ | AURORA_IO_WRITE)) || fds_.count(fd))
        return nullptr;
    auto p = std::make_unique<uv_poll_t>();
    if (uv_poll_init(loop_, p.get(), fd) != 0) return nullptr;
    auto io = std::make_unique<aurora_io>();
    io->owner = owner;
    io->fd = fd;
    io->fn = fn;
    io->arg = arg;
    io->poll = p.release();  // freed by its close callback
    io->poll->data = io.get();
    aurora_io *handle = io.get();
    ios_.emplace(handle, std::move(io));
    fds_.insert(fd);
    set(handle, events);
    return handle;
}

aurora_status LoopIo::set(aurora_io *io, uint32_t events) {
    if (events & ~(AURORA_IO_READ | AURORA_IO_WRITE)) return AURORA_ERR_INVALID;
    if (io->events == events && io->poll) return AURORA_OK;
    io->events = events;
    if (!io->poll) return AURORA_OK;  // the loop has ended
    int rc = events ? uv_poll_start(io->poll, uv_events(events), on_poll) : uv_poll_stop(io->poll);
    return rc == 0 ? AURORA_OK : AURORA_ERR;
}

void LoopIo::stop(aurora_io *io) {
    auto it = ios_.find(io);
    if (it == ios_.end()) return;
    if (io->poll) close_handle(reinterpret_cast<uv_handle_t *>(io->poll));
    fds_.erase(io->fd);
    ios_.erase(it);
}

aurora_timer *LoopIo::timer(aurora_plugin_ctx *owner, uint64_t after_ms, uint64_t repeat_ms, aurora_timer_fn fn,
                            void *arg) {
    if (!loop_ || ended_ || !fn) return nullptr;
    auto u = std::make_unique<uv_timer_t>();
    if (uv_timer_init(loop_, u.get()) != 0) return nullptr;
    auto t = std::make_unique<aurora_timer>();
    t->owner = owner;
    t->fn = fn;
    t->arg = arg;
    t->timer = u.release();  // freed by its close callback
    t->timer->data = t.get();
    uv_timer_start(t->timer, on_timer, after_ms, repeat_ms);
    aurora_timer *handle = t.get();
    timers_.emplace(handle, std::move(t));
    return handle;
}

void LoopIo::stop(aurora_timer *t) {
    auto it = timers_.find(t);
    if (it == timers_.end()) return;
    if (t->timer) close_handle(reinterpret_cast<uv_handle_t *>(t->timer));
    timers_.erase(it);
}

aurora_status LoopIo::before_sleep(void (*fn)(void *), void *arg) {
    if (ended_) return AURORA_ERR_CLOSED;
    before_sleep_.emplace_back(fn, arg);
    return AURORA_OK;
}

void LoopIo::run_before_sleep() {
    while (!before_sleep_.empty()) {  // what the calls queue runs in this pass too
        running_.swap(before_sleep_);
        for (auto [fn, arg] : running_) fn(arg);
        running_.clear();
    }
}

void LoopIo::end() {
    if (ended_) return;
    run_before_sleep();  // promised: queued calls run before the loop waits, and it will not again
    ended_ = true;
    for (auto &[h, io] : ios_) {
        if (io->poll) close_handle(reinterpret_cast<uv_handle_t *>(io->poll));
        io->poll = nullptr;
    }
    for (auto &[h, t] : timers_) {
        if (t->timer) close_handle(reinterpret_cast<uv_handle_t *>(t->timer));
        t->timer = nullptr;
    }
}

void LoopIo::clear() {
    end();
    ios_.clear();
    fds_.clear();
    timers_.clear();
}

}  // namespace aurora::host
