// The bans and disconnects the chat plugin's server API decides
// (docs/server-api.md), as every plugin that enforces them sees them:
//
//   chat:bans            a sorted set: user id -> the ban's end (Unix ms)
//   chat:control         what the chat replicas act on: {"op":"ban","userId",
//                        "until_ms","reason"}, {"op":"unban","userId"},
//                        {"op":"disconnect","userId","reason"}
//   chat:bans:changes    the bans and unbans alone, for plugins that only
//                        check bans (auth): published with chat:control, so
//                        a disconnect's receiver count is the chat replicas'
//
// A Moderation keeps a copy of the bans in memory, on the host's service
// loop (ABI 1.2, two AsyncRedis connections): the subscription, and the
// reads. Once its subscription is confirmed (at start, after every
// reconnect) it loads the bans, so nothing decided while it was away is
// missed, and it applies each announcement as it comes. An announcement
// that arrives while a load is in flight may be in the load's answer or not
// (each is published in the same script as its change): it is applied
// again after the load, which is harmless either way. A load that fails is
// tried again every second. banned() is a map lookup: the auth plugin asks
// it at every handshake, the chat plugin at every connect and frame.
//
// Thread contract: [service] (start() in init, the destructor in shutdown).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "plugin_handle.h"
#include "redis_async.h"

namespace aurora::plugin {

class Moderation {
public:
    static constexpr const char *kControlChannel = "chat:control";
    static constexpr const char *kBanChannel = "chat:bans:changes";
    static constexpr const char *kBansKey = "chat:bans";
    static constexpr size_t kMaxBansLoaded = 100000;

    // Called on the service thread for every ban announced or loaded
    // (reason "" for a loaded one) and every disconnect announced.
    using Handler = std::function<void(const std::string &user_id, const std::string &reason)>;

    // `channel`: kControlChannel (bans and disconnects) or kBanChannel (bans only).
    Moderation(const PluginHandle &plugin, const RedisUrl &url, std::chrono::milliseconds timeout, const char *channel);
    ~Moderation();
    void on_ban(Handler h) { on_ban_ = std::move(h); }
    void on_disconnect(Handler h) { on_disconnect_ = std::move(h); }
    bool start();  // init; false after logging why
    // Subscribed, and the bans loaded by a read sent after the subscription.
    bool ready() const { return ready_; }
    bool banned(const std::string &user_id, uint64_t now_ms) const;
    // Some ban is known (the common case is none: no clock read per frame).
    bool any() const { return !bans_.empty(); }

private:
    void load();
    void announced(std::string_view payload);
    void apply(std::string_view payload, bool notify);  // notify: run the handlers

    PluginHandle plugin_;
    const char *channel_;
    AsyncRedis sub_, reads_;
    std::unordered_map<std::string, uint64_t> bans_;  // user -> until (wall ms)
    bool ready_ = false;
    bool subscribed_ = false;           // confirmed on the current subscription connection
    bool loading_ = false;              // a load is in flight
    bool again_ = false;                // a confirmation came while it was: load once more
    std::vector<std::string> arrived_;  // announcements since it was sent, applied again after it
    aurora_timer *retry_ = nullptr;     // a failed load, tried again
    Handler on_ban_, on_disconnect_;
};

}  // namespace aurora::plugin
