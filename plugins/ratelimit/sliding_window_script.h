// The sliding-window log as one Redis Lua script, and how to call it:
// SCRIPT LOAD once per connection, EVALSHA per check (pipelined by the
// caller), reload on NOSCRIPT.
//
// One call checks every limit of one event atomically: the event is allowed
// only if every key has room, and is recorded in every key only then, so a
// refusal never spends any budget. Each key is a list of the last `max`
// event times (microseconds, Redis TIME, so every replica uses one clock),
// newest first; it expires `window_ms` after its newest event.
//
// Thread contract: stateless functions plus a ScriptHandle owned by the one
// thread that owns the RedisConnection.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ratelimit_settings.h"
#include "redis_connection.h"

namespace aurora::ratelimit {

// The Lua source (docs/ratelimit.md explains it line by line).
std::string_view sliding_window_lua();

struct KeyedLimit {
    std::string key;
    Limit limit;
};

// What the script decided. `limit_index` is the index (0-based) of the
// limit that refused with the longest wait, -1 when allowed.
struct Verdict {
    bool allowed = false;
    int64_t retry_after_ms = 0;
    int limit_index = -1;
};

enum class ReplyKind { Ok, NoScript, Error };

class ScriptHandle {
public:
    // Loads the script when the connection is new (`fresh`) or after
    // NOSCRIPT; one round trip. False with `error` on failure.
    bool ensure_loaded(plugin::RedisConnection &redis, bool fresh, std::string &error);
    void forget() { sha_.clear(); }
    const std::string &sha() const { return sha_; }

    // The EVALSHA command for one event.
    std::vector<std::string> evalsha(const std::vector<KeyedLimit> &limits) const;

private:
    std::string sha_;
};

// Decodes one EVALSHA reply. `error` carries the Redis error text.
ReplyKind decode(const redisReply *reply, Verdict &out, std::string &error);

}  // namespace aurora::ratelimit
