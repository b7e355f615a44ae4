// Where the master is, as Redis Sentinel says (redis.mode "sentinel",
// docs/scaling.md), for the AsyncRedis connections of one plugin part: one
// connection to one Sentinel at a time, on the host's loop.
//
//   - On connect it asks SENTINEL get-master-addr-by-name, then subscribes
//     to +switch-master: a failover moves master() the moment the Sentinel
//     announces it, and AsyncRedis (at its next tick) drops a connection to
//     the old master and connects to the new one.
//   - A Sentinel that cannot be reached, or whose connection drops, gives
//     way to the next one in the list (round robin).
//   - refresh(): a data connection failed. The server is not the master
//     (ROLE, a READONLY reply): what the Sentinel said is stale, ask again
//     now (at most every 500 ms). It is unreachable or the connection
//     dropped: the master is down, and +switch-master will say where the
//     new one is once the Sentinels have failed over. But a Sentinel that
//     did not lead the failover announces it only once it hears from the
//     leader, seconds later (5 s seen in tests), so while the master stays
//     down the next Sentinel is asked every 500 ms: one that knows answers
//     within a round of the list.
//
// For 10 s after a +switch-master, an answer naming another master is
// ignored: Sentinels that did not lead the failover learn of it from the
// leader a little later, and until then name the old master.
//
// master() is empty until a Sentinel has answered: AsyncRedis waits.
//
// THREADS: [service], or [main] in the plugin's init and shutdown (as
// AsyncRedis).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "plugin_handle.h"
#include "redis_connection.h"

namespace aurora::plugin {

class AsyncRedis;

class SentinelWatch {
public:
    // `target`: sentinels and master_name (sentinel mode); `name` is the
    // AsyncRedis's, for the log.
    SentinelWatch(const PluginHandle &plugin, const RedisUrl &target, std::chrono::milliseconds timeout,
                  const std::string &name);
    ~SentinelWatch();
    SentinelWatch(const SentinelWatch &) = delete;
    SentinelWatch &operator=(const SentinelWatch &) = delete;

    bool start();
    const std::optional<HostPort> &master() const { return master_; }
    enum class Why { Stale, Down };
    void refresh(Why why);

private:
    void ask();
    // `switched`: from a +switch-master announcement (else a reply to
    // get-master-addr-by-name, which a lagging Sentinel may give stale).
    void found(HostPort master, bool switched);
    void next_sentinel();

    PluginHandle plugin_;
    std::vector<HostPort> sentinels_;
    std::string master_name_, name_;
    size_t current_ = 0;
    std::unique_ptr<AsyncRedis> conn_;
    std::optional<HostPort> master_;
    std::chrono::steady_clock::time_point last_refresh_{}, last_answer_{}, switched_at_{};
};

}  // namespace aurora::plugin
