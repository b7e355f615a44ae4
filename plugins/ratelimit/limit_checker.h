// The limiter thread: takes every waiting check, pipelines one EVALSHA per
// check to Redis, reads every reply (one round trip per batch, so batches
// grow with load), then finishes each check in arrival order: a message is
// resumed (CONTINUE, or REPLY rate_limited), a connection over its
// per-address budget is closed with 1008.
//
// Thread contract: submit() and redis_up() from any thread (the service
// thread in practice); everything else runs on the limiter thread, which
// alone owns the Redis connection and the script handle. Checks reach it
// through a JobQueue. Every submitted message is resumed
// exactly once, also at shutdown (DROP) and when Redis fails
// (on_redis_error), and never later than about redis_timeout_ms.
#pragma once

#include <aurora/aurora.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "conn_table.h"
#include "job_queue.h"
#include "ratelimit_metrics.h"
#include "ratelimit_settings.h"
#include "redis_connection.h"
#include "sliding_window_script.h"

namespace aurora::ratelimit {

struct Check {
    Kind kind = Kind::Message;  // Message or Connect
    aurora_msg *msg = nullptr;  // Message: PENDING, owned until resumed
    aurora_conn_id conn = 0;
    std::string addr;                // Connect: the client address
    std::vector<KeyedLimit> limits;  // one script call checks them all; none: only held for admission
    std::vector<LimitName> names;    // parallel to limits
    std::string ref_json;            // the request's "ref", echoed in replies
    uint64_t enqueued_ns = 0;
};

class LimitChecker {
public:
    LimitChecker(const aurora_host_api *host, aurora_plugin_ctx *self, const RateLimitSettings &cfg, const Metrics &metrics,
                 ConnTable &conns, plugin::RedisUrl url);

    // Main thread, during init: starts the thread.
    aurora_status start();
    // Any thread. The check is queued and the thread woken.
    void submit(Check check);
    // Any thread: the last round trip to Redis worked.
    bool redis_up() const { return up_.load(std::memory_order_relaxed); }

private:
    static void thread_main(aurora_worker *w, void *self);
    void run(aurora_worker *w);
    void process(std::vector<Check> &batch);
    bool connect(std::string &error);
    void round_trip(std::vector<Check> &checks);
    void finish(Check &c, const Verdict &v);
    void fail(Check &c, const std::string &why);
    void set_up(bool up, const std::string &why);
    void idle_probe();

    const aurora_host_api *host_;
    aurora_plugin_ctx *self_;
    const RateLimitSettings &cfg_;
    const Metrics &m_;
    ConnTable &conns_;

    // Never closed: what is submitted after the thread stopped is freed with
    // the plugin (the host resumes nothing any more then).
    plugin::JobQueue<Check> jobs_;

    // Limiter thread only.
    plugin::RedisConnection redis_;
    ScriptHandle script_;
    std::vector<Check> carry_;  // messages held back until their connection's admission is decided
    uint64_t last_error_log_ns_ = 0;
    uint64_t last_io_ns_ = 0;  // the last round trip to Redis (a check or a ping)

    std::atomic<bool> up_{false};
};

}  // namespace aurora::ratelimit
