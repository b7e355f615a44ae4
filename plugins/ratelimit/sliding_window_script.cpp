#include "sliding_window_script.h"

namespace aurora::ratelimit {

namespace {

// KEYS[i]: the list of the last events of limit i, newest first.
// ARGV[2i-1], ARGV[2i]: that limit's max and window_ms.
// Returns {1, 0, 0} (allowed and recorded) or {0, retry_after_ms, i}.
constexpr std::string_view kLua = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local wait, which = 0, 0
for i = 1, #KEYS do
  local nth = redis.call('LINDEX', KEYS[i], tonumber(ARGV[2 * i - 1]) - 1)
  if nth then
    local w = tonumber(nth) + tonumber(ARGV[2 * i]) * 1000 - now
    if w > wait then wait, which = w, i end
  end
end
if which > 0 then
  return {0, math.ceil(wait / 1000), which}
end
local stamp = string.format('%.0f', now)
for i = 1, #KEYS do
  redis.call('LPUSH', KEYS[i], stamp)
  redis.call('LTRIM', KEYS[i], 0, tonumber(ARGV[2 * i - 1]) - 1)
  redis.call('PEXPIRE', KEYS[i], ARGV[2 * i])
end
return {1, 0, 0}
)lua";

}  // namespace

std::string_view sliding_window_lua() { return kLua; }

namespace {
std::vector<std::string> call(std::string head, std::string script, const std::vector<KeyedLimit> &limits) {
    std::vector<std::string> argv;
    argv.reserve(3 + 3 * limits.size());
    argv.push_back(std::move(head));
    argv.push_back(std::move(script));
    argv.push_back(std::to_string(limits.size()));
    for (const KeyedLimit &l : limits) argv.push_back(l.key);
    for (const KeyedLimit &l : limits) {
        argv.push_back(std::to_string(l.limit.max));
        argv.push_back(std::to_string(l.limit.window_ms));
    }
    return argv;
}
}  // namespace

std::vector<std::string> evalsha_argv(const std::string &sha, const std::vector<KeyedLimit> &limits) {
    return call("EVALSHA", sha, limits);
}

std::vector<std::string> eval_argv(const std::vector<KeyedLimit> &limits) {
    return call("EVAL", std::string(kLua), limits);
}

ReplyKind decode(const redisReply *r, Verdict &out, std::string &error) {
    if (r->type == REDIS_REPLY_ERROR) {
        error.assign(r->str, r->len);
        return error.starts_with("NOSCRIPT") ? ReplyKind::NoScript : ReplyKind::Error;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || r->element[0]->type != REDIS_REPLY_INTEGER ||
        r->element[1]->type != REDIS_REPLY_INTEGER || r->element[2]->type != REDIS_REPLY_INTEGER) {
        error = "unexpected reply from the rate-limit script";
        return ReplyKind::Error;
    }
    out.allowed = r->element[0]->integer == 1;
    out.retry_after_ms = r->element[1]->integer;
    out.limit_index = static_cast<int>(r->element[2]->integer) - 1;
    return ReplyKind::Ok;
}

}  // namespace aurora::ratelimit
