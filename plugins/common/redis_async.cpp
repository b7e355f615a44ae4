#include "redis_async.h"

#include <poll.h>

#include <algorithm>
#include <memory>

#include "sentinel_watch.h"

namespace aurora::plugin {

namespace {
AsyncRedis *from(const redisAsyncContext *ac) { return static_cast<AsyncRedis *>(ac->data); }
}  // namespace

uint32_t ready_now(int fd, uint32_t wanted) {
    pollfd p{fd, static_cast<short>(((wanted & AURORA_IO_READ) ? POLLIN : 0) | ((wanted & AURORA_IO_WRITE) ? POLLOUT : 0)),
             0};
    if (fd < 0 || poll(&p, 1, 0) != 1) return 0;
    if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) return wanted;
    return ((p.revents & POLLIN) ? AURORA_IO_READ : 0u) | ((p.revents & POLLOUT) ? AURORA_IO_WRITE : 0u);
}

AsyncRedis::AsyncRedis(const PluginHandle &plugin, RedisUrl url, std::chrono::milliseconds timeout,
                       size_t max_pending, std::string name)
    : plugin_(plugin), url_(std::move(url)), timeout_(timeout), max_pending_(max_pending), name_(std::move(name)) {}

AsyncRedis::~AsyncRedis() {
    closing_ = true;  // callbacks still waiting are freed, not called: the plugin is going
    if (ac_) redisAsyncFree(ac_);  // ev_cleanup stops the watch
    if (timer_) plugin_.host->timer_stop(timer_);
}

bool AsyncRedis::start() {
    if (timer_) return true;
    const aurora_host_api *h = plugin_.host;
    if (!AURORA_HOST_HAS(h, call_before_sleep)) {
        plugin_.log(AURORA_LOG_ERROR, "redis (%s): this host lacks ABI 1.2 (io_watch): upgrade aurora-host", name_.c_str());
        return false;
    }
    // The watchdog looks 10 times per deadline (at least every 100 ms).
    uint64_t every = static_cast<uint64_t>(std::clamp<int64_t>(timeout_.count() / 10, 10, 100));
    if (url_.sentinel()) {
        sentinel_ = std::make_unique<SentinelWatch>(plugin_, url_, timeout_, name_);
        if (!sentinel_->start()) return false;
    }
    timer_ = h->timer_start(plugin_.self, every, every, tick, this);
    if (!timer_) return false;
    connect();
    return true;
}

void AsyncRedis::retarget(const HostPort &server) {
    url_.host = server.host;
    url_.port = server.port;
}

void AsyncRedis::connect() {
    if (sentinel_) {
        const std::optional<HostPort> &master = sentinel_->master();
        if (!master) return;  // not known yet: the next tick looks again
        server_ = *master;
    } else {
        server_ = HostPort{url_.host, url_.port};
    }
    next_connect_ = Clock::now() + backoff_;
    backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(2000));
    redisAsyncContext *ac = redisAsyncConnect(server_.host.c_str(), server_.port);
    if (!ac) return;
    if (ac->err) {
        unreachable(ac->errstr);
        redisAsyncFree(ac);
        return;
    }
    ac->data = this;
    ac->ev.data = this;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    io_ = plugin_.host->io_watch(plugin_.self, ac->c.fd, 0, on_io, this);
    if (!io_) {
        redisAsyncFree(ac);
        return;
    }
    ac_ = ac;
    watch(AURORA_IO_READ | AURORA_IO_WRITE);  // writable: connect(2) finished
    // The handshake: what the URL asks, then a PING (a ROLE in sentinel
    // mode) whose answer says "up".
    auto handshake = [this](std::vector<std::string_view> argv, bool last) {
        auto *p = new Pending{this, nullptr};
        if (last) {
            p->cb = [this](const redisReply *r) {
                if (!r || r->type == REDIS_REPLY_ERROR) return;  // lost() or the AUTH/SELECT reply says why
                if (sentinel_ && !role_is_master(r)) {
                    // The Sentinels have not caught up with a failover yet.
                    plugin_.log(AURORA_LOG_WARN, "redis (%s): %s:%d is not the master (yet); asking the Sentinels again",
                                name_.c_str(), server_.host.c_str(), server_.port);
                    sentinel_->refresh(SentinelWatch::Why::Stale);
                    redisAsyncDisconnect(ac_);
                    return;
                }
                up_ = announced_ = true;
                quiet_ = false;
                backoff_ = std::chrono::milliseconds(100);
                plugin_.log(AURORA_LOG_INFO, "redis (%s): connected to %s:%d%s", name_.c_str(), server_.host.c_str(),
                            server_.port, sentinel_ ? " (the master, as the Sentinels say)" : "");
                if (on_up_) on_up_();
            };
        } else {
            p->cb = [this](const redisReply *r) {
                if (r && r->type == REDIS_REPLY_ERROR)
                    plugin_.log(AURORA_LOG_ERROR, "redis (%s): %.*s", name_.c_str(), static_cast<int>(r->len), r->str);
            };
        }
        if (!send(argv, on_reply, p)) delete p;
    };
    std::string db = std::to_string(url_.db);
    if (!url_.password.empty()) handshake({"AUTH", url_.password}, false);
    if (url_.db != 0) handshake({"SELECT", db}, false);
    handshake({sentinel_ ? "ROLE" : "PING"}, true);
}

bool AsyncRedis::send(const std::vector<std::string_view> &argv, redisCallbackFn *fn, void *privdata) {
    if (!ac_) return false;
    std::vector<const char *> ptrs;
    std::vector<size_t> lens;
    ptrs.reserve(argv.size());
    lens.reserve(argv.size());
    for (std::string_view a : argv) {
        ptrs.push_back(a.data());
        lens.push_back(a.size());
    }
    if (redisAsyncCommandArgv(ac_, fn, privdata, static_cast<int>(argv.size()), ptrs.data(), lens.data()) != REDIS_OK)
        return false;
    if (fn == on_reply) {
        sent_.push_back(Clock::now());
        ++unwritten_;
    }
    return true;
}

bool AsyncRedis::command(const std::vector<std::string_view> &argv, Callback cb) {
    if (!up_ || sent_.size() >= max_pending_) return false;
    auto p = std::make_unique<Pending>(Pending{this, std::move(cb)});
    if (!send(argv, on_reply, p.get())) return false;
    p.release();  // on_reply frees it
    return true;
}

bool AsyncRedis::subscribe(const std::vector<std::string_view> &argv, Callback handler) {
    if (!up_) return false;
    sub_handler_ = std::move(handler);
    return send(argv, on_sub_reply, this);
}

void AsyncRedis::on_reply(redisAsyncContext *, void *reply, void *privdata) {
    std::unique_ptr<Pending> p(static_cast<Pending *>(privdata));
    AsyncRedis *self = p->self;
    if (!self->sent_.empty()) self->sent_.pop_front();
    if (reply) self->last_reply_ = Clock::now();
    if (!reply) self->up_ = false;  // the connection is going: what the callback tries is refused
    auto *r = static_cast<const redisReply *>(reply);
    if (r && r->type == REDIS_REPLY_ERROR && self->on_error_ && !self->closing_)
        self->on_error_(std::string_view(r->str, r->len));
    if (!self->closing_ && p->cb) p->cb(r);
    if (r && r->type == REDIS_REPLY_ERROR && std::string_view(r->str, r->len).starts_with("READONLY") && self->ac_ &&
        self->up_) {
        // It was the master and is a replica now: find the new one.
        self->plugin_.log(AURORA_LOG_WARN, "redis (%s): %s:%d is read-only now (demoted by a failover); reconnecting",
                          self->name_.c_str(), self->server_.host.c_str(), self->server_.port);
        self->up_ = false;
        if (self->sentinel_) self->sentinel_->refresh(SentinelWatch::Why::Stale);
        redisAsyncDisconnect(self->ac_);
    }
}

void AsyncRedis::on_sub_reply(redisAsyncContext *, void *reply, void *privdata) {
    auto *self = static_cast<AsyncRedis *>(privdata);
    if (reply && !self->closing_ && self->sub_handler_) self->sub_handler_(static_cast<const redisReply *>(reply));
}

void AsyncRedis::on_connect(const redisAsyncContext *ac, int status) {
    if (status != REDIS_OK) from(ac)->unreachable(ac->errstr);
}

// One warning per outage (the first failed attempt), not one per retry.
void AsyncRedis::unreachable(const char *why) {
    if (sentinel_) sentinel_->refresh(SentinelWatch::Why::Down);  // it may have moved
    if (on_unreachable_) on_unreachable_();
    if (quiet_) return;
    quiet_ = true;
    plugin_.log(AURORA_LOG_WARN, "redis (%s): cannot connect to %s:%d: %s; retrying", name_.c_str(),
                server_.host.c_str(), server_.port, why);
}

void AsyncRedis::on_disconnect(const redisAsyncContext *ac, int status) {
    // hiredis frees the context after this (ev_cleanup runs)
    from(ac)->lost(status == REDIS_OK ? "disconnected" : ac->errstr);
}

void AsyncRedis::lost(const std::string &why) {
    bool was_up = announced_;
    up_ = announced_ = false;
    sent_.clear();
    unwritten_ = 0;
    if (was_up && !closing_) {
        if (!dropping_)
            plugin_.log(AURORA_LOG_WARN, "redis (%s): connection lost: %s; reconnecting", name_.c_str(), why.c_str());
        if (sentinel_ && !dropping_) sentinel_->refresh(SentinelWatch::Why::Down);
        if (on_down_) on_down_(why);
    }
}

void AsyncRedis::stop() {
    if (timer_) plugin_.host->timer_stop(timer_);
    timer_ = nullptr;
    drop();
}

void AsyncRedis::drop() {
    if (!ac_) return;
    up_ = false;
    redisAsyncFree(ac_);  // every waiting callback gets nullptr; ev_cleanup runs
}

void AsyncRedis::watch(uint32_t events) {
    if (!io_ || events == events_) return;
    events_ = events;
    plugin_.host->io_set(io_, events);
}

void AsyncRedis::ev_add_read(void *p) {
    auto *self = static_cast<AsyncRedis *>(p);
    self->watch(self->events_ | AURORA_IO_READ);
}
void AsyncRedis::ev_del_read(void *p) {
    auto *self = static_cast<AsyncRedis *>(p);
    self->watch(self->events_ & ~AURORA_IO_READ);
}
// Output is waiting. Connected and not inside a flush: write it before the
// loop sleeps, with everything else this iteration queues. Otherwise (still
// connecting, or the socket took only part) wait until it is writable.
void AsyncRedis::ev_add_write(void *p) {
    auto *self = static_cast<AsyncRedis *>(p);
    if (self->flushing_ || !self->ac_ || !(self->ac_->c.flags & REDIS_CONNECTED)) {
        self->watch(self->events_ | AURORA_IO_WRITE);
        return;
    }
    if (self->flush_queued_ || (self->events_ & AURORA_IO_WRITE)) return;
    if (self->plugin_.host->call_before_sleep(self->plugin_.self, flush, self) == AURORA_OK) {
        self->flush_queued_ = true;
    } else {
        self->watch(self->events_ | AURORA_IO_WRITE);  // the loop is ending: the descriptor is all we have
    }
}
void AsyncRedis::ev_del_write(void *p) {
    auto *self = static_cast<AsyncRedis *>(p);
    self->watch(self->events_ & ~AURORA_IO_WRITE);
}
void AsyncRedis::ev_cleanup(void *p) {
    auto *self = static_cast<AsyncRedis *>(p);
    std::string why = self->ac_ && self->ac_->err ? self->ac_->errstr : "connection closed";
    if (self->io_) self->plugin_.host->io_stop(self->io_);
    self->io_ = nullptr;
    self->events_ = 0;
    self->ac_ = nullptr;
    self->lost(why);
}

// A command's deadline counts from when it was written, not queued: a loop
// iteration that queues thousands of commands may itself take longer than
// the deadline under load.
void AsyncRedis::written() {
    const Clock::time_point now = Clock::now();
    for (auto it = sent_.rbegin(); unwritten_ > 0 && it != sent_.rend(); ++it, --unwritten_) *it = now;
    unwritten_ = 0;
}

void AsyncRedis::flush(void *p) {
    auto *self = static_cast<AsyncRedis *>(p);
    if (self->before_write_ && self->ac_) self->before_write_();  // flush_queued_ still set: what it queues joins in
    self->flush_queued_ = false;
    if (!self->ac_) return;
    self->flushing_ = true;
    self->written();
    redisAsyncHandleWrite(self->ac_);  // may free the context (write error): ac_ is then nullptr
    self->flushing_ = false;
}

void AsyncRedis::on_io(void *p, uint32_t ready) {
    auto *self = static_cast<AsyncRedis *>(p);
    if ((ready & AURORA_IO_WRITE) && self->ac_) {
        if (self->before_write_) self->before_write_();
        self->flushing_ = true;
        self->written();
        redisAsyncHandleWrite(self->ac_);
        self->flushing_ = false;
    }
    if ((ready & AURORA_IO_READ) && self->ac_) redisAsyncHandleRead(self->ac_);
}

void AsyncRedis::tick(void *p) {
    auto *self = static_cast<AsyncRedis *>(p);
    bool now_please = false;
    if (self->reconnect_) {
        self->reconnect_ = false;
        self->dropping_ = true;
        self->drop();
        self->dropping_ = false;
        now_please = true;
    }
    if (self->sentinel_) {
        // Moved: connected to the old master, or waiting out the backoff
        // after failing to reach it. Go to the new one now.
        const std::optional<HostPort> &master = self->sentinel_->master();
        if (master && *master != self->server_) {
            if (self->server_.port)  // not the first address learned
                self->plugin_.log(AURORA_LOG_WARN, "redis (%s): the Sentinels moved the master to %s:%d; reconnecting",
                                  self->name_.c_str(), master->host.c_str(), master->port);
            // Asked for: lost() must not ask the Sentinels again (one that
            // lags behind the failover would name the old master).
            self->dropping_ = true;
            self->drop();
            self->dropping_ = false;
            now_please = true;
        }
    }
    if (now_please) {
        self->backoff_ = std::chrono::milliseconds(100);
        self->next_connect_ = Clock::now();
    }
    if (!self->ac_) {
        if (Clock::now() >= self->next_connect_) self->connect();
        return;
    }
    // Stalled: commands wait and Redis has answered nothing for `timeout`
    // (a long backlog that Redis works through is not a stall). Timers run
    // before the loop polls: after an iteration that kept the loop busy (or
    // a plugin init that kept it from starting), the connect may be done and
    // replies waiting unread. So first do what the socket allows now: a
    // command written only now counts from now (written()).
    auto stalled = [self] {
        return !self->sent_.empty() && Clock::now() - std::max(self->sent_.front(), self->last_reply_) > self->timeout_;
    };
    if (stalled()) {
        if (uint32_t ready = ready_now(self->ac_->c.fd, self->events_ | AURORA_IO_READ))
            on_io(self, ready);  // may free the context (EOF, error): ac_ is then nullptr
    }
    if (self->ac_ && stalled()) {
        if (!self->announced_) {  // never up: a server that does not answer is an unreachable one
            self->drop();
            self->unreachable("no answer (connect or handshake timed out)");
            return;
        }
        self->plugin_.log(AURORA_LOG_WARN, "redis (%s): no reply for %lld ms (%zu waiting); dropping the connection",
                          self->name_.c_str(), static_cast<long long>(self->timeout_.count()), self->sent_.size());
        self->drop();
    }
}

}  // namespace aurora::plugin
