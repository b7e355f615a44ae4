// The per-user cap on concurrent WebSocket connections, counted across
// replicas in Redis. One sorted set per user (`<prefix>conns:<userId>`): a
// member per live connection ("<replica>:<connId>") scored with its expiry
// time (Redis TIME + ttl). Replicas refresh the scores of their connections;
// entries of a replica that crashed simply expire, so no count leaks, and the
// key itself expires when nobody refreshes it. Each operation is one Lua
// script (atomic). Worker threads only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "redis_router.h"

namespace aurora::auth {

class ConnectionCap {
public:
    ConnectionCap(std::string prefix, int64_t cap, int64_t ttl_ms) : prefix_(std::move(prefix)), cap_(cap), ttl_ms_(ttl_ms) {}

    // Adds `member` for `user_id` unless the user already has `cap` live
    // entries. Returns the count including this one (> cap: refused, nothing
    // added); nullopt with `error` when Redis fails.
    std::optional<int64_t> admit(plugin::RedisRouter &redis, const std::string &user_id,
                                 const std::string &member, std::string &error) const;
    // Pushes the expiry of every (user_id, member) forward, pipelined.
    bool refresh(plugin::RedisRouter &redis, const std::vector<std::pair<std::string, std::string>> &entries,
                 std::string &error) const;
    bool release(plugin::RedisRouter &redis, const std::string &user_id, const std::string &member,
                 std::string &error) const;

    std::string key(const std::string &user_id) const { return prefix_ + "conns:" + user_id; }
    int64_t cap() const { return cap_; }
    int64_t ttl_ms() const { return ttl_ms_; }

private:
    std::string prefix_;
    int64_t cap_;
    int64_t ttl_ms_;
};

}  // namespace aurora::auth
