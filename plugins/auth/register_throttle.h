// Registration throttling in Redis, shared by every replica: at most
// `max_per_addr` registration attempts per client address in a fixed window
// (INCR + PEXPIRE NX + PTTL, one pipelined round trip). Every attempt that
// reaches a worker counts, whatever its outcome (a 409 costs a hash too).
// Worker threads only (blocking I/O on the calling thread's RedisConnection).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "redis_router.h"

namespace aurora::auth {

class RegisterThrottle {
public:
    RegisterThrottle(std::string prefix, int64_t window_ms, int64_t max_per_addr)
        : prefix_(std::move(prefix)), window_ms_(window_ms), max_per_addr_(max_per_addr) {}

    // Counts one attempt from `addr`: 0 when it may proceed, else the
    // milliseconds until the window ends; nullopt with `error` when Redis fails.
    std::optional<int64_t> admit(plugin::RedisRouter &redis, const std::string &addr, std::string &error) const;

    std::string addr_key(const std::string &addr) const { return prefix_ + "register:addr:" + addr; }

private:
    std::string prefix_;
    int64_t window_ms_;
    int64_t max_per_addr_;  // 0 = no limit
};

}  // namespace aurora::auth
