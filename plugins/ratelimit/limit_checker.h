// The shared-budget checks, on the host's service loop (ABI 1.2,
// plugin::AsyncRedis): one EVALSHA per check, written with every other
// check of the same loop iteration in one write before the loop sleeps, the
// verdict applied when its reply comes back. No thread, no hand-off: a
// check costs the message no wake-up of its own.
//
// A message is resumed (CONTINUE, or REPLY rate_limited) when its reply
// comes, or decided in its own hook (submit() returns the verdict) when the
// check cannot be sent: Redis down, slow past redis_timeout_ms, or too many
// checks waiting. Then on_redis_error decides. A connection over its
// per-address budget is closed with 1008. A connection's checks come back
// in the order they were sent, so a message waits behind its connection's
// admission check (a PING queued after it) and is dropped if the connection
// was refused.
//
// Thread contract: [service] (start() in init, the destructor in shutdown).
// Every submitted message is resumed exactly once, never later than about
// redis_timeout_ms.
#pragma once

#include <aurora/aurora.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "conn_table.h"
#include "ratelimit_metrics.h"
#include "ratelimit_settings.h"
#include "async_cluster.h"
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
    bool retried = false;            // sent again with EVAL after NOSCRIPT
    uint16_t slot = 0;               // cluster mode: its keys' slot (the admission key's when it has none)
};

class LimitChecker {
public:
    static constexpr size_t kMaxPending = 65536;  // checks waiting for Redis

    LimitChecker(const aurora_host_api *host, aurora_plugin_ctx *self, const RateLimitSettings &cfg, const Metrics &metrics,
                 ConnTable &conns, plugin::RedisUrl url);
    ~LimitChecker();

    // Main thread, during init: connects on the host's loop.
    aurora_status start();
    // From a hook. AURORA_PENDING: the message is resumed later. Otherwise
    // the verdict for the hook to return now (its reply is set).
    aurora_verdict submit(Check check);
    // The connection works and the script is loaded.
    bool redis_up(uint16_t slot) const { return redis_.up(slot) && !sha_.empty(); }

public:
    // Every master answers and the script is loaded (/ready).
    bool ready() const { return redis_.all_up() && !sha_.empty(); }
    bool cluster() const { return redis_.cluster(); }

private:

private:
    using CheckPtr = std::shared_ptr<Check>;
    void load_script(plugin::AsyncRedis &node);
    void send(const CheckPtr &c);
    void on_reply(const CheckPtr &c, const redisReply *r);
    // Apply a verdict: return it from the hook (in_hook), or resume.
    aurora_verdict conclude(Check &c, aurora_verdict v, bool in_hook);
    aurora_verdict finish(Check &c, const Verdict &v, bool in_hook);
    aurora_verdict fail(Check &c, const std::string &why, bool in_hook);
    void close_later(aurora_conn_id conn, uint16_t code, const char *reason);
    void probe();
    static void observe_batch(void *self);  // before the loop sleeps

    const aurora_host_api *host_;
    aurora_plugin_ctx *self_;
    const RateLimitSettings &cfg_;
    const Metrics &m_;
    ConnTable &conns_;
    plugin::AsyncCluster redis_;
    std::string sha_;  // empty until SCRIPT LOAD answered
    aurora_timer *probe_timer_ = nullptr;  // a PING per second while idle: keeps /ready honest
    uint64_t last_error_log_ns_ = 0;
    uint64_t last_io_ns_ = 0;
    size_t batch_ = 0;  // checks queued in this loop iteration
};

}  // namespace aurora::ratelimit
