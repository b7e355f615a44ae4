#include "login_throttle.h"

#include <cstdlib>
#include <vector>

namespace aurora::auth {

using plugin::RedisReply;

namespace {

int64_t as_int(const redisReply *r) {
    if (!r) return 0;
    if (r->type == REDIS_REPLY_INTEGER) return r->integer;
    if (r->type == REDIS_REPLY_STRING) return std::strtoll(r->str, nullptr, 10);
    return 0;
}

// Reads `n` pipelined replies into `out` (nullptr-free). False with `error`
// on a lost connection or an error reply (all `n` are read either way while
// the connection lives, so the next command sees its own reply).
bool read_replies(plugin::RedisConnection &redis, size_t n, std::vector<RedisReply> &out, std::string &error) {
    bool ok = true;
    for (size_t i = 0; i < n; ++i) {
        RedisReply r = redis.read(error);
        if (!r) return false;
        if (r->type == REDIS_REPLY_ERROR && ok) {
            error = std::string("redis: ") + r->str;
            ok = false;
        }
        out.push_back(std::move(r));
    }
    return ok;
}

}  // namespace

std::optional<int64_t> LoginThrottle::blocked_for_ms(plugin::RedisRouter &router, const std::string &username,
                                                     const std::string &addr, std::string &error) const {
    const bool tag = router.cluster();
    plugin::RedisConnection *redis = router.at(addr_key(addr, tag), error);
    if (!redis) return std::nullopt;
    redis->append({"PTTL", wait_key(username, addr, tag)});  // -2 (no key) when the pair may try
    const bool per_addr = p_.max_per_addr > 0;
    if (per_addr) {
        redis->append({"GET", addr_key(addr, tag)});
        redis->append({"PTTL", addr_key(addr, tag)});
    }
    std::vector<RedisReply> r;
    if (!read_replies(*redis, per_addr ? 3 : 1, r, error)) return std::nullopt;
    int64_t wait_ms = std::max<int64_t>(as_int(r[0].get()), 0);
    if (per_addr && as_int(r[1].get()) >= p_.max_per_addr) {
        const int64_t left = as_int(r[2].get());
        wait_ms = std::max(wait_ms, left > 0 ? left : p_.window_ms);
    }
    return wait_ms;
}

bool LoginThrottle::record_failure(plugin::RedisRouter &router, const std::string &username,
                                   const std::string &addr, std::string &error) const {
    const bool tag = router.cluster();
    plugin::RedisConnection *redis = router.at(addr_key(addr, tag), error);
    if (!redis) return false;
    const std::string window = std::to_string(p_.window_ms);
    const std::string pair = pair_key(username, addr, tag);
    redis->append({"INCR", pair});
    redis->append({"PEXPIRE", pair, window});  // remembered for a window after the last failure
    const bool per_addr = p_.max_per_addr > 0;
    if (per_addr) {
        redis->append({"INCR", addr_key(addr, tag)});
        redis->append({"PEXPIRE", addr_key(addr, tag), window, "NX"});  // the window starts at the first failure
    }
    std::vector<RedisReply> r;
    if (!read_replies(*redis, per_addr ? 4 : 2, r, error)) return false;
    const int64_t wait = p_.backoff_ms(as_int(r[0].get()));
    if (wait <= 0) return true;
    RedisReply set = redis->command({"SET", wait_key(username, addr, tag), "1", "PX", std::to_string(wait)}, error);
    if (set && set->type == REDIS_REPLY_ERROR) error = std::string("redis: ") + set->str;
    return set && set->type != REDIS_REPLY_ERROR;
}

bool LoginThrottle::record_success(plugin::RedisRouter &router, const std::string &username,
                                   const std::string &addr, std::string &error) const {
    const bool tag = router.cluster();
    plugin::RedisConnection *redis = router.at(addr_key(addr, tag), error);
    if (!redis) return false;
    RedisReply r = redis->command({"DEL", pair_key(username, addr, tag), wait_key(username, addr, tag)}, error);
    if (r && r->type == REDIS_REPLY_ERROR) error = std::string("redis: ") + r->str;
    return r && r->type != REDIS_REPLY_ERROR;
}

}  // namespace aurora::auth
