// The ratelimit plugin's settings: the table (one source for validation at
// init and for the README) and the parsed, read-only configuration.
#pragma once

#include <aurora/common.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "settings.h"

namespace aurora::ratelimit {

// At most `max` events in any window of `window_ms` milliseconds, wherever
// the window starts. max == 0: the limit is off.
struct Limit {
    int64_t max = 0;
    int64_t window_ms = 1000;
    bool on() const { return max > 0; }
};

enum class OnRedisError { Allow, Deny };
enum class AnonymousKey { Address, Connection };

// Parsed once by init on the main thread; read-only afterwards, so every
// thread may read it without a lock.
struct RateLimitSettings {
    std::string redis_url;
    bool own_redis = false;  // redis_url was given: that one server, not the host's redis (mode included)
    int64_t redis_timeout_ms = 200;
    std::string key_prefix = "rate";
    std::string default_room = "general";
    std::vector<std::string> message_types;
    std::vector<std::string> control_types;
    Limit room, user, control, connect, abuse;
    OnRedisError on_redis_error = OnRedisError::Deny;
    OnRedisError on_redis_error_connect = OnRedisError::Allow;
    AnonymousKey anonymous_key = AnonymousKey::Address;
    int64_t max_batch = 1024;
};

std::span<const plugin::Setting> settings_table();

// nullopt with `error` naming the setting when the config is wrong.
// `shared_redis_url` is host->setting("redis.url"), used unless the plugin
// config names its own.
std::optional<RateLimitSettings> parse_config(aurora_str config_json, std::string_view shared_redis_url, std::string &error);

}  // namespace aurora::ratelimit
