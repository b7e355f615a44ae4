#include "login_throttle.h"

#include <algorithm>
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

}  // namespace

std::optional<int64_t> LoginThrottle::blocked_for_ms(plugin::RedisConnection &redis, const std::string &username,
                                                     const std::string &addr, std::string &error) const {
    struct Check {
        std::string key;
        int64_t max;
    };
    std::vector<Check> checks;
    if (p_.max_per_user > 0) checks.push_back({user_key(username), p_.max_per_user});
    if (p_.max_per_addr > 0) checks.push_back({addr_key(addr), p_.max_per_addr});
    if (checks.empty()) return 0;
    if (!redis.ensure(error)) return std::nullopt;
    for (const Check &c : checks) {  // one round trip for all
        redis.append({"GET", c.key});
        redis.append({"PTTL", c.key});
    }
    int64_t wait_ms = 0;
    for (const Check &c : checks) {
        RedisReply count = redis.read(error);
        RedisReply ttl = count ? redis.read(error) : nullptr;
        if (!count || !ttl) return std::nullopt;
        if (count->type == REDIS_REPLY_ERROR || ttl->type == REDIS_REPLY_ERROR) {
            error = std::string("redis: ") + (count->type == REDIS_REPLY_ERROR ? count->str : ttl->str);
            return std::nullopt;
        }
        if (as_int(count.get()) >= c.max) {
            int64_t left = as_int(ttl.get());
            wait_ms = std::max(wait_ms, left > 0 ? left : p_.window_ms);
        }
    }
    return wait_ms;
}

bool LoginThrottle::record_failure(plugin::RedisConnection &redis, const std::string &username,
                                   const std::string &addr, std::string &error) const {
    if (!redis.ensure(error)) return false;
    const std::string window = std::to_string(p_.window_ms);
    const std::string keys[] = {user_key(username), addr_key(addr)};
    for (const std::string &k : keys) {
        redis.append({"INCR", k});
        redis.append({"PEXPIRE", k, window, "NX"});  // the window starts at the first failure
    }
    bool ok = true;
    for (int i = 0; i < 4; ++i) {
        RedisReply r = redis.read(error);
        if (!r) return false;
        if (r->type == REDIS_REPLY_ERROR) {
            error = std::string("redis: ") + r->str;
            ok = false;
        }
    }
    return ok;
}

bool LoginThrottle::record_success(plugin::RedisConnection &redis, const std::string &username,
                                   std::string &error) const {
    if (p_.max_per_user <= 0) return true;
    if (!redis.ensure(error)) return false;
    RedisReply r = redis.command({"DEL", user_key(username)}, error);
    return r && r->type != REDIS_REPLY_ERROR;
}

}  // namespace aurora::auth
