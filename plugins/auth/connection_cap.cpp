#include "connection_cap.h"

#include <map>

namespace aurora::auth {

using plugin::RedisReply;

namespace {

// KEYS[1] the user's set; ARGV: member, ttl_ms, cap. Redis 7 replicates
// script effects, so TIME is allowed before writes.
constexpr const char *kAdmit = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
local n = redis.call('ZCARD', KEYS[1])
if n > tonumber(ARGV[3]) then redis.call('ZREM', KEYS[1], ARGV[1]) end
if redis.call('ZCARD', KEYS[1]) > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return n
)lua";

// KEYS[1] the user's set; ARGV: member, ttl_ms.
constexpr const char *kRefresh = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
)lua";

}  // namespace

std::optional<int64_t> ConnectionCap::admit(plugin::RedisRouter &router, const std::string &user_id,
                                            const std::string &member, std::string &error) const {
    plugin::RedisConnection *redis = router.at(key(user_id), error);
    if (!redis) return std::nullopt;
    RedisReply r = redis->command(
        {"EVAL", kAdmit, "1", key(user_id), member, std::to_string(ttl_ms_), std::to_string(cap_)}, error);
    if (!r) return std::nullopt;
    if (r->type != REDIS_REPLY_INTEGER) {
        error = std::string("redis admit: ") + (r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        return std::nullopt;
    }
    return r->integer;
}

// One pipeline per connection: the one, or each master's in cluster mode.
// Every connection is found before anything is sent, and a connection left
// with replies unread (a read failed on another) is reset: the next command
// on it must not read a stale reply.
bool ConnectionCap::refresh(plugin::RedisRouter &router,
                            const std::vector<std::pair<std::string, std::string>> &entries,
                            std::string &error) const {
    const std::string ttl = std::to_string(ttl_ms_);
    std::vector<plugin::RedisConnection *> via;
    via.reserve(entries.size());
    for (const auto &[user, member] : entries) {
        plugin::RedisConnection *redis = router.at(key(user), error);
        if (!redis) return false;
        via.push_back(redis);
    }
    std::map<plugin::RedisConnection *, size_t> sent;
    for (size_t i = 0; i < entries.size(); ++i) {
        via[i]->append({"EVAL", kRefresh, "1", key(entries[i].first), entries[i].second, ttl});
        ++sent[via[i]];
    }
    bool ok = true, lost = false;
    for (const auto &[redis, n] : sent) {
        for (size_t i = 0; i < n && !lost; ++i) {
            RedisReply r = redis->read(error);
            if (!r) {
                lost = true;  // read() reset this one
                break;
            }
            if (r->type == REDIS_REPLY_ERROR) {
                error = std::string("redis refresh: ") + r->str;
                ok = false;
            }
        }
        if (lost && redis->pending() > 0) redis->reset();
    }
    return ok && !lost;
}

bool ConnectionCap::release(plugin::RedisRouter &router, const std::string &user_id, const std::string &member,
                            std::string &error) const {
    plugin::RedisConnection *redis = router.at(key(user_id), error);
    if (!redis) return false;
    RedisReply r = redis->command({"ZREM", key(user_id), member}, error);
    return r && r->type != REDIS_REPLY_ERROR;
}

}  // namespace aurora::auth
