#include "redis_router.h"

#include "cluster_slots.h"

namespace aurora::plugin {

RedisRouter::RedisRouter(RedisUrl url, std::chrono::milliseconds timeout) : one_(url, timeout) {
    if (url.cluster()) cluster_ = std::make_unique<RedisCluster>(url.nodes, url.password, timeout);
}

RedisConnection *RedisRouter::at(std::string_view key, std::string &error) {
    if (!cluster_) return one_.ensure(error) ? &one_ : nullptr;
    const auto now = std::chrono::steady_clock::now();
    if (now - map_at_ > kMapMaxAge) {
        if (cluster_->refresh(error)) map_at_ = now;
    }
    return cluster_->connection(key_slot(key), error);
}

}  // namespace aurora::plugin
