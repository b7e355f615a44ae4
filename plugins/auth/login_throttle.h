// Login throttling in Redis: failed logins are counted per username and per
// client address in fixed windows (INCR + PEXPIRE NX, one pipelined round
// trip), so every replica sees the same counts. Worker threads only (blocking
// I/O on the calling thread's RedisConnection).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "redis_connection.h"

namespace aurora::auth {

struct ThrottlePolicy {
    std::string prefix;        // "auth:"
    int64_t window_ms = 0;
    int64_t max_per_user = 0;  // 0 = no limit
    int64_t max_per_addr = 0;
};

class LoginThrottle {
public:
    explicit LoginThrottle(ThrottlePolicy policy) : p_(std::move(policy)) {}

    // Milliseconds until `username`/`addr` may try again (0 = allowed now);
    // nullopt with `error` when Redis fails.
    std::optional<int64_t> blocked_for_ms(plugin::RedisConnection &redis, const std::string &username,
                                          const std::string &addr, std::string &error) const;
    // Counts one failed attempt for both keys. False with `error`.
    bool record_failure(plugin::RedisConnection &redis, const std::string &username, const std::string &addr,
                        std::string &error) const;
    // A good password clears the username's count (not the address's).
    bool record_success(plugin::RedisConnection &redis, const std::string &username, std::string &error) const;

    std::string user_key(const std::string &username) const { return p_.prefix + "login:user:" + username; }
    std::string addr_key(const std::string &addr) const { return p_.prefix + "login:addr:" + addr; }

private:
    ThrottlePolicy p_;
};

}  // namespace aurora::auth
