#include "ratelimit_settings.h"

#include <algorithm>
#include <array>

namespace aurora::ratelimit {

using plugin::Setting;

namespace {

constexpr double kMaxWindowMs = 86400000.0;  // one day
constexpr double kMaxCount = 1000000.0;

// The README's settings table is generated from this one (Settings::markdown).
const std::array kSettings{
    Setting{"redis_url", Setting::String, "\"\"", "Redis for the shared budgets; empty = the host's `redis.url` (with its `redis.mode`); given, that one server"},
    Setting{"redis_timeout_ms", Setting::Int, "200",
            "longest a check may wait for Redis; past it `on_redis_error` decides", 10, 60000},
    Setting{"key_prefix", Setting::String, "\"rate\"",
            "first part of every key: `<prefix>:<userId>:<room>`, `<prefix>-user:<userId>`, `<prefix>-addr:<address>`"},
    Setting{"default_room", Setting::String, "\"general\"",
            "room of a counted message without a `room` field when the connection is in no room"},
    Setting{"message_types", Setting::StringList, "[\"message\"]",
            "message types that count against the per-room and per-user limits"},
    Setting{"control_types", Setting::StringList, "[\"typing\",\"presence\",\"resume\"]",
            "message types that count against the per-connection control limit"},
    Setting{"room_max", Setting::Int, "3", "messages per user per room in any `room_window_ms` (0 = off)", 0, kMaxCount},
    Setting{"room_window_ms", Setting::Int, "1000", "window of the per-room limit", 1, kMaxWindowMs},
    Setting{"user_max", Setting::Int, "10", "messages per user across all rooms in any `user_window_ms` (0 = off)", 0,
            kMaxCount},
    Setting{"user_window_ms", Setting::Int, "1000", "window of the per-user limit", 1, kMaxWindowMs},
    Setting{"control_max", Setting::Int, "10",
            "control messages per connection in any `control_window_ms` (0 = off); checked in memory", 0, kMaxCount},
    Setting{"control_window_ms", Setting::Int, "1000", "window of the control limit", 1, kMaxWindowMs},
    Setting{"connect_max", Setting::Int, "30",
            "WebSocket connections per client address in any `connect_window_ms` (0 = off)", 0, kMaxCount},
    Setting{"connect_window_ms", Setting::Int, "60000", "window of the connection-attempt limit", 1, kMaxWindowMs},
    Setting{"abuse_max", Setting::Int, "20",
            "refusals a connection may collect in any `abuse_window_ms` before it is closed with 1008 (0 = never)", 0,
            kMaxCount},
    Setting{"abuse_window_ms", Setting::Int, "10000", "window of the abuse count", 1, kMaxWindowMs},
    Setting{"on_redis_error", Setting::String, "\"deny\"",
            "`allow` or `deny` counted messages when Redis fails or is slower than `redis_timeout_ms`"},
    Setting{"on_redis_error_connect", Setting::String, "\"allow\"",
            "`allow` or `deny` new connections when the connection-attempt check fails"},
    Setting{"anonymous_key", Setting::String, "\"address\"",
            "user id of a connection without one: `address` (the client address) or `connection` (this connection)"},
    Setting{"max_batch", Setting::Int, "1024",
            "accepted for older configs, no effect: checks are pipelined per loop iteration", 1, 65536},
};

bool parse_policy(const plugin::Settings &s, const char *name, OnRedisError &out, std::string &error) {
    const std::string &v = s.string(name);
    if (v == "allow") out = OnRedisError::Allow;
    else if (v == "deny") out = OnRedisError::Deny;
    else {
        error = std::string("setting \"") + name + "\" must be \"allow\" or \"deny\", not \"" + v + "\"";
        return false;
    }
    return true;
}

Limit limit(const plugin::Settings &s, const std::string &kind) {
    return Limit{s.integer((kind + "_max").c_str()), s.integer((kind + "_window_ms").c_str())};
}

}  // namespace

std::span<const Setting> settings_table() { return kSettings; }

std::optional<RateLimitSettings> parse_config(aurora_str config_json, std::string_view shared_redis_url, std::string &error) {
    auto s = plugin::Settings::parse(config_json, kSettings, error);
    if (!s) return std::nullopt;
    RateLimitSettings c;
    c.redis_url = s->string("redis_url");
    c.own_redis = !c.redis_url.empty();
    if (c.redis_url.empty()) c.redis_url = shared_redis_url.empty() ? "redis://127.0.0.1:6379/0" : shared_redis_url;
    c.redis_timeout_ms = s->integer("redis_timeout_ms");
    c.key_prefix = s->string("key_prefix");
    c.default_room = s->string("default_room");
    c.message_types = s->list("message_types");
    c.control_types = s->list("control_types");
    c.room = limit(*s, "room");
    c.user = limit(*s, "user");
    c.control = limit(*s, "control");
    c.connect = limit(*s, "connect");
    c.abuse = limit(*s, "abuse");
    c.max_batch = s->integer("max_batch");
    if (c.key_prefix.empty() || c.key_prefix.size() > 64) {
        error = "setting \"key_prefix\" must be 1 to 64 bytes";
        return std::nullopt;
    }
    if (c.default_room.empty() || c.default_room.size() > 256) {
        error = "setting \"default_room\" must be 1 to 256 bytes";
        return std::nullopt;
    }
    for (const std::string &t : c.message_types) {
        if (std::find(c.control_types.begin(), c.control_types.end(), t) != c.control_types.end()) {
            error = "type \"" + t + "\" is in both \"message_types\" and \"control_types\"";
            return std::nullopt;
        }
    }
    if (!parse_policy(*s, "on_redis_error", c.on_redis_error, error) ||
        !parse_policy(*s, "on_redis_error_connect", c.on_redis_error_connect, error))
        return std::nullopt;
    const std::string &anon = s->string("anonymous_key");
    if (anon == "address") c.anonymous_key = AnonymousKey::Address;
    else if (anon == "connection") c.anonymous_key = AnonymousKey::Connection;
    else {
        error = "setting \"anonymous_key\" must be \"address\" or \"connection\", not \"" + anon + "\"";
        return std::nullopt;
    }
    return c;
}

}  // namespace aurora::ratelimit
