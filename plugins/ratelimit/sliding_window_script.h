// The sliding-window log as one Redis Lua script, and how to call it:
// SCRIPT LOAD once per connection, EVALSHA per check (pipelined by the
// caller), EVAL and a reload on NOSCRIPT.
//
// One call checks every limit of one event atomically: the event is allowed
// only if every key has room, and is recorded in every key only then, so a
// refusal never spends any budget. Each key is a list of the last `max`
// event times (microseconds, Redis TIME, so every replica uses one clock),
// newest first; it expires `window_ms` after its newest event.
//
// Thread contract: stateless functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ratelimit_settings.h"
#include <hiredis/hiredis.h>

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

// EVALSHA of the loaded script (`sha`, from SCRIPT LOAD of
// sliding_window_lua()) over `limits`.
std::vector<std::string> evalsha_argv(const std::string &sha, const std::vector<KeyedLimit> &limits);
// EVAL with the script's text: after NOSCRIPT, while it loads again.
std::vector<std::string> eval_argv(const std::vector<KeyedLimit> &limits);

// Decodes one EVALSHA reply. `error` carries the Redis error text.
ReplyKind decode(const redisReply *reply, Verdict &out, std::string &error);

}  // namespace aurora::ratelimit
