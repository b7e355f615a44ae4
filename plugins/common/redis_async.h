// One hiredis asynchronous connection on the host's service loop (ABI 1.2),
// as Redis modules and nginx do their I/O: no thread, no hand-off. Commands
// that hooks issue during one loop iteration are written together, in one
// system call, before the loop sleeps (host->call_before_sleep); replies
// come back through the connection's descriptor (host->io_watch) and run
// their callbacks on the service thread.
//
//     AsyncRedis redis(plugin, url, std::chrono::milliseconds(1000), 65536, "sends");
//     redis.on_up([&] { ...SCRIPT LOAD... });
//     redis.start();
//     if (!redis.command({"EVALSHA", sha, ...}, [](const redisReply *r) { ... }))
//         ...answer `unavailable` now...
//
// THE SERVICE THREAD NEVER WAITS FOR REDIS:
//   - connecting is non-blocking (the address is a literal or resolved by
//     getaddrinfo, which reads /etc/hosts and DNS: name Redis by address
//     where DNS may stall);
//   - a deadline (`timeout`): when commands wait (counted from when they
//     were written) and no reply has come for that long (a Redis paused, a network that drops packets), the
//     connection is dropped, every waiting callback gets nullptr, and it
//     reconnects with backoff (100 ms doubling to 2 s). A backlog that
//     Redis keeps answering is not a stall: under a bulk load a command may
//     wait longer than `timeout` behind the ones before it;
//   - at most `max_pending` commands wait for replies; past that, and while
//     the connection is not up, command() refuses at once (false) and the
//     caller answers `unavailable`: nothing queues without bound.
//
// SENTINEL MODE (url.sentinel(), docs/scaling.md): the address comes from a
// SentinelWatch (sentinel_watch.h), which asks the Sentinels and follows
// their +switch-master announcements; the handshake ends with ROLE instead
// of PING and only a master counts as up. A connection to a server that is
// no longer the master (the Sentinels named another, or it answers
// READONLY) is dropped and made again to the new one, without waiting for
// the backoff.
//
// Callbacks: exactly once per accepted command, with the reply (possibly a
// Redis error reply) or nullptr (connection lost, deadline passed). Not
// called once the AsyncRedis is being destroyed (the host is going: the
// plugin's shutdown). A subscription's handler (subscribe) is called for
// every message until the connection drops.
//
// THREADS: [service], or [main] in the plugin's init and shutdown.
#pragma once

#include <hiredis/async.h>

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "plugin_handle.h"
#include "redis_connection.h"  // RedisUrl

namespace aurora::plugin {

class SentinelWatch;

// What `fd` can do right now (AURORA_IO_READ / AURORA_IO_WRITE, of
// `wanted`), without waiting; an error or hang-up counts as both. For a
// timer about to judge a connection: the loop may not have run for a while
// (a plugin's init, a long callback) and the events it would have seen are
// still unhandled. Time the loop did not run is not the server's delay.
uint32_t ready_now(int fd, uint32_t wanted);

// A reply as text: a string's, status's or error's bytes, an integer's
// digits, "no reply" for nullptr (a lost connection, a deadline), else
// "unexpected reply". For logs, and for the members and scores of replies
// whose elements are strings.
inline std::string reply_text(const redisReply *r) {
    if (!r) return "no reply";
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR)
        return std::string(r->str, r->len);
    if (r->type == REDIS_REPLY_INTEGER) return std::to_string(r->integer);
    return "unexpected reply";
}

class AsyncRedis {
public:
    using Clock = std::chrono::steady_clock;
    using Callback = std::function<void(const redisReply *)>;

    AsyncRedis(const PluginHandle &plugin, RedisUrl url, std::chrono::milliseconds timeout, size_t max_pending,
               std::string name);
    ~AsyncRedis();
    AsyncRedis(const AsyncRedis &) = delete;
    AsyncRedis &operator=(const AsyncRedis &) = delete;

    // Runs once the connection is usable (connected, AUTH/SELECT answered):
    // load scripts, subscribe. Then again after every reconnect.
    void on_up(std::function<void()> fn) { on_up_ = std::move(fn); }
    // Runs when a usable connection is lost, after every waiting callback
    // got nullptr.
    void on_down(std::function<void(const std::string &why)> fn) { on_down_ = std::move(fn); }
    // Runs after every failed connection attempt.
    void on_unreachable(std::function<void()> fn) { on_unreachable_ = std::move(fn); }
    // Runs just before the commands queued in this loop iteration are
    // written: what it queues leaves in the same write (chat's WAIT after a
    // batch of sends).
    void before_write(std::function<void()> fn) { before_write_ = std::move(fn); }

    // Sees every error reply of a command before its callback does
    // (AsyncCluster learns MOVED redirections here).
    void on_error_reply(std::function<void(std::string_view error)> fn) { on_error_ = std::move(fn); }

    // Starts connecting (and the deadline watchdog). False if the host
    // lacks ABI 1.2 or refused the timer. A second call does nothing.
    bool start();
    bool up() const { return up_; }
    // The server of the next connection attempt (plain mode; SentinelWatch
    // moves on to the next Sentinel with it).
    void retarget(const HostPort &server);
    // Closes the connection for good: every waiting callback called with
    // nullptr, no reconnect, command() refused from now on. Not from inside
    // one of this connection's callbacks. The object must outlive the loop
    // iteration (a write it queued may still run, and finds nothing).
    void stop();
    // Drops the connection (quietly: it is asked for) and connects again,
    // at the next watchdog tick (never inside a hiredis callback).
    void reconnect_soon() { reconnect_ = true; }
    size_t pending() const { return sent_.size(); }
    // The server of the current (or last) connection.
    const HostPort &server() const { return server_; }

    // Queues one command. False, and cb is not kept, when not up or full.
    bool command(const std::vector<std::string_view> &argv, Callback cb);
    // SUBSCRIBE / PSUBSCRIBE: `handler` gets the confirmation and every
    // message (pmessage arrays) until the connection drops; it replaces the
    // previous one.
    bool subscribe(const std::vector<std::string_view> &argv, Callback handler);

private:
    struct Pending {
        AsyncRedis *self;
        Callback cb;
    };
    static void on_reply(redisAsyncContext *ac, void *reply, void *privdata);
    static void on_sub_reply(redisAsyncContext *ac, void *reply, void *privdata);
    static void on_connect(const redisAsyncContext *ac, int status);
    static void on_disconnect(const redisAsyncContext *ac, int status);
    // hiredis's event hooks (ac->ev), over io_watch and call_before_sleep
    static void ev_add_read(void *p);
    static void ev_del_read(void *p);
    static void ev_add_write(void *p);
    static void ev_del_write(void *p);
    static void ev_cleanup(void *p);
    static void on_io(void *p, uint32_t ready);
    static void flush(void *p);
    static void tick(void *p);

    void connect();
    void drop();  // frees the connection now; not from inside a hiredis callback
    void lost(const std::string &why);
    void unreachable(const char *why);
    void watch(uint32_t events);
    void written();  // stamps the commands queued since the last write
    bool send(const std::vector<std::string_view> &argv, redisCallbackFn *fn, void *privdata);

    PluginHandle plugin_;
    RedisUrl url_;
    std::chrono::milliseconds timeout_;
    size_t max_pending_;
    std::string name_;
    std::unique_ptr<SentinelWatch> sentinel_;  // sentinel mode only
    HostPort server_;                          // of the current (or last) connection

    redisAsyncContext *ac_ = nullptr;  // nullptr while disconnected
    aurora_io *io_ = nullptr;
    uint32_t events_ = 0;
    aurora_timer *timer_ = nullptr;  // the watchdog: deadlines and reconnects
    bool up_ = false;         // commands accepted
    bool announced_ = false;  // "connected" was logged and on_up ran: a loss is announced
    bool quiet_ = false;      // this outage's "cannot connect" was logged
    bool flush_queued_ = false;
    bool flushing_ = false;
    bool closing_ = false;
    bool reconnect_ = false;  // reconnect_soon() asked
    bool dropping_ = false;   // the loss is asked for: not announced
    Clock::time_point next_connect_{};
    std::chrono::milliseconds backoff_{100};
    std::deque<Clock::time_point> sent_;  // when each waiting command was written (queued, until then), oldest first
    size_t unwritten_ = 0;                // the newest entries of sent_ that are not written yet
    Clock::time_point last_reply_{};      // the last reply read
    Callback sub_handler_;
    std::function<void()> on_up_;
    std::function<void(const std::string &)> on_down_;
    std::function<void()> on_unreachable_, before_write_;
    std::function<void(std::string_view)> on_error_;
};

}  // namespace aurora::plugin
