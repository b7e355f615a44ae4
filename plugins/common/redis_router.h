// A worker thread's Redis, whatever redis.mode says: the one connection
// (single and sentinel modes), or one per Redis Cluster master through
// RedisCluster (cluster mode), picked by the slot of a key.
//
//     RedisRouter redis(url, 1000ms);
//     RedisConnection *c = redis.at("auth:login:addr:{10.0.0.1}", err);
//     if (!c) ...unavailable...
//     c->append(...); c->read(err);     // every key of the pipeline in that slot
//
// In cluster mode the slot map is asked again when a master cannot be
// reached (a failover) and at least every kMapMaxAge (a slot moved by a
// resharding answers MOVED until then: the caller's request fails, as on
// any Redis error).
//
// THREADS: one thread owns it (blocking I/O).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "redis_cluster.h"
#include "redis_connection.h"

namespace aurora::plugin {

class RedisRouter {
public:
    static constexpr std::chrono::seconds kMapMaxAge{10};

    RedisRouter(RedisUrl url, std::chrono::milliseconds timeout);
    // The connection (connected) for commands whose keys are all in the slot
    // of `key`; nullptr with `error` when it cannot be reached.
    RedisConnection *at(std::string_view key, std::string &error);
    bool cluster() const { return cluster_ != nullptr; }

private:
    RedisConnection one_;
    std::unique_ptr<RedisCluster> cluster_;
    std::chrono::steady_clock::time_point map_at_{};
};

}  // namespace aurora::plugin
