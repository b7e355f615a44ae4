// The bans and disconnects the chat plugin's server API decides
// (docs/server-api.md), as every plugin that enforces them sees them:
//
//   chat:bans      a sorted set: user id -> the ban's end (Unix ms)
//   chat:control   announcements: {"op":"ban","userId","until_ms","reason"},
//                  {"op":"unban","userId"}, {"op":"disconnect","userId","reason"}
//
// A Moderation keeps a copy of the bans in memory, on the host's service
// loop (ABI 1.2, two AsyncRedis connections): the subscription, and the
// reads. It loads the bans each time the subscription is confirmed (at
// start and after every reconnect), so nothing decided while it was away is
// missed, and applies each announcement as it comes. banned() is a map
// lookup: the auth plugin asks it at every handshake, the chat plugin at
// every connect and frame.
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
    static constexpr const char *kBansKey = "chat:bans";
    static constexpr size_t kMaxBansLoaded = 100000;

    // Called on the service thread for every ban announced or loaded
    // (reason "" for a loaded one) and every disconnect announced.
    using Handler = std::function<void(const std::string &user_id, const std::string &reason)>;

    Moderation(const PluginHandle &plugin, const RedisUrl &url, std::chrono::milliseconds timeout);
    void on_ban(Handler h) { on_ban_ = std::move(h); }
    void on_disconnect(Handler h) { on_disconnect_ = std::move(h); }
    bool start();  // init; false after logging why
    // Subscribed, and the bans loaded since.
    bool ready() const { return ready_; }
    bool banned(const std::string &user_id, uint64_t now_ms) const;

private:
    void load();
    void announced(std::string_view payload);
    void apply(std::string_view payload, bool notify);  // notify: run the handlers

    PluginHandle plugin_;
    AsyncRedis sub_, reads_;
    std::unordered_map<std::string, uint64_t> bans_;  // user -> until (wall ms)
    bool ready_ = false;
    bool loading_ = false;              // a load is in flight
    std::vector<std::string> arrived_;  // announcements since it was sent, applied again after it
    Handler on_ban_, on_disconnect_;
};

}  // namespace aurora::plugin
