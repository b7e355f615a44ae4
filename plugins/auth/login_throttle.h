// Login throttling in Redis, shared by every replica. Two limits:
// - per (username, client address): after `free_failures` failed logins,
//   each further failure makes that pair wait base, 2*base, 4*base ... up to
//   max_backoff before its next attempt (a key with that expiry); the count is
//   forgotten `window_ms` after the pair's last failure or at its first
//   success. Nobody can lock a user out from another address.
// - per client address, all usernames: `max_per_addr` failures in a fixed
//   window (INCR + PEXPIRE NX) block the address until the window ends.
// There is deliberately no per-username limit across addresses: it would let
// anyone deny a known user (docs/auth.md, "Login throttling").
// Worker threads only (blocking I/O on the calling thread's RedisConnection).
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>

#include "redis_router.h"

namespace aurora::auth {

struct ThrottlePolicy {
    std::string prefix;             // "auth:"
    int64_t window_ms = 0;          // memory of failures (pair: since the last; address: fixed window)
    int64_t free_failures = 5;      // failures per (username, address) before backoff starts
    int64_t backoff_base_ms = 1000;
    int64_t backoff_max_ms = 900000;
    int64_t max_per_addr = 0;       // 0 = no limit

    // The wait after the pair's `failures`-th failure (0 = none).
    int64_t backoff_ms(int64_t failures) const {
        if (failures < free_failures) return 0;
        const int64_t doublings = std::min<int64_t>(failures - free_failures, 40);
        int64_t d = backoff_base_ms;
        for (int64_t i = 0; i < doublings && d < backoff_max_ms; ++i) d *= 2;
        return std::min(d, backoff_max_ms);
    }
};

class LoginThrottle {
public:
    explicit LoginThrottle(ThrottlePolicy policy) : p_(std::move(policy)) {}

    // Milliseconds until `username` may be tried again from `addr` (0 =
    // allowed now); nullopt with `error` when Redis fails.
    std::optional<int64_t> blocked_for_ms(plugin::RedisRouter &redis, const std::string &username,
                                          const std::string &addr, std::string &error) const;
    // Counts one failed attempt for the pair and the address, and starts the
    // pair's backoff when it is due. False with `error`.
    bool record_failure(plugin::RedisRouter &redis, const std::string &username, const std::string &addr,
                        std::string &error) const;
    // A good password clears the pair (not the address's count).
    bool record_success(plugin::RedisRouter &redis, const std::string &username, const std::string &addr,
                        std::string &error) const;

    // Usernames have no ':' (credentials.h), so a pair key is unambiguous.
    // Cluster mode (`tag`): the address is a hash tag, so that the keys one
    // call pipelines are in one slot: "login:fail:{<addr>}:<user>".
    std::string pair_key(const std::string &username, const std::string &addr, bool tag = false) const {
        return tag ? p_.prefix + "login:fail:{" + addr + "}:" + username : p_.prefix + "login:fail:" + username + ":" + addr;
    }
    std::string wait_key(const std::string &username, const std::string &addr, bool tag = false) const {
        return tag ? p_.prefix + "login:wait:{" + addr + "}:" + username : p_.prefix + "login:wait:" + username + ":" + addr;
    }
    std::string addr_key(const std::string &addr, bool tag = false) const {
        return tag ? p_.prefix + "login:addr:{" + addr + "}" : p_.prefix + "login:addr:" + addr;
    }

private:
    ThrottlePolicy p_;
};

}  // namespace aurora::auth
