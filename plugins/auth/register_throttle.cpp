#include "register_throttle.h"

namespace aurora::auth {

std::optional<int64_t> RegisterThrottle::admit(plugin::RedisRouter &router, const std::string &addr,
                                               std::string &error) const {
    if (max_per_addr_ <= 0) return 0;
    const std::string key = addr_key(addr);
    plugin::RedisConnection *redis = router.at(key, error);
    if (!redis) return std::nullopt;
    redis->append({"INCR", key});
    redis->append({"PEXPIRE", key, std::to_string(window_ms_), "NX"});  // the window starts at the first attempt
    redis->append({"PTTL", key});
    plugin::RedisReply count, expire, ttl;
    if (!(count = redis->read(error)) || !(expire = redis->read(error)) || !(ttl = redis->read(error)))
        return std::nullopt;
    for (const plugin::RedisReply *r : {&count, &expire, &ttl}) {
        if ((*r)->type == REDIS_REPLY_ERROR) {
            error = std::string("redis: ") + (*r)->str;
            return std::nullopt;
        }
    }
    if (count->type != REDIS_REPLY_INTEGER || count->integer <= max_per_addr_) return 0;
    const int64_t left = ttl->type == REDIS_REPLY_INTEGER ? ttl->integer : 0;
    return left > 0 ? left : window_ms_;
}

}  // namespace aurora::auth
