// A plugin's Redis on the host's service loop, whatever redis.mode says:
// one AsyncRedis (single and sentinel modes: the slot is not looked at), or
// one AsyncRedis per Redis Cluster master, each command sent to the master
// of its slot (cluster mode, docs/scaling.md).
//
//     AsyncCluster redis(plugin, url, 1000ms, 65536, "sends");
//     redis.on_node_up([&](AsyncRedis &node) { ...SCRIPT LOAD on it... });
//     redis.start();
//     uint16_t slot = key_slot("chat:messages:{3}");
//     if (!redis.command(slot, {"EVALSHA", ...}, cb)) ...answer `unavailable`...
//
// CLUSTER MODE:
//   - the slot map comes from CLUSTER SLOTS, asked of a node that is up: at
//     start (of the seed nodes), when asked (refresh_soon), after a MOVED
//     or CLUSTERDOWN reply, and every 250 ms while a slot's master is not
//     up (a master failed: its replica is promoted within the cluster's
//     node timeout, and the map then names it);
//   - a MOVED reply corrects the slot at once (the caller, which sees the
//     error reply, sends again: AsyncCluster keeps no copy of a command);
//     an ASK reply is the caller's to follow with command_at(asking);
//   - connections to nodes that are no longer masters are stopped at the
//     next tick (never inside one of their callbacks), their waiting
//     callbacks called with nullptr; the objects are kept (retired_) until
//     the AsyncCluster goes, since a write queued before may still run.
//
// Callbacks: as AsyncRedis (exactly once per accepted command).
// THREADS: [service], or [main] in the plugin's init and shutdown.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cluster_slots.h"
#include "redis_async.h"

namespace aurora::plugin {

class AsyncCluster {
public:
    AsyncCluster(const PluginHandle &plugin, RedisUrl url, std::chrono::milliseconds timeout, size_t max_pending,
                 std::string name);
    ~AsyncCluster();
    AsyncCluster(const AsyncCluster &) = delete;
    AsyncCluster &operator=(const AsyncCluster &) = delete;

    bool cluster() const { return url_.cluster(); }
    // Each node's connection, once it is up (and after every reconnect):
    // load scripts there.
    void on_node_up(std::function<void(AsyncRedis &node)> fn) { on_node_up_ = std::move(fn); }
    // A node's connection was lost.
    void on_node_down(std::function<void(AsyncRedis &node)> fn) { on_node_down_ = std::move(fn); }
    // The slot map changed (cluster mode).
    void on_map(std::function<void()> fn) { on_map_ = std::move(fn); }
    // Each node's AsyncRedis::before_write (chat's WAIT after a batch);
    // before start().
    void before_write(std::function<void(AsyncRedis &node)> fn) { before_write_ = std::move(fn); }

    bool start();
    // The connection that serves `slot` is up (any slot, outside cluster mode).
    bool up(uint16_t slot) const;
    // Every master of the map is up (the one connection, outside cluster mode).
    bool all_up() const;
    // Queues one command whose keys are all in `slot`. False, cb not kept,
    // when that master is unknown, not up, or too far behind.
    bool command(uint16_t slot, const std::vector<std::string_view> &argv, AsyncRedis::Callback cb);
    // The connection that serves `slot` (the one, outside cluster mode);
    // nullptr when the map names no master for it. Valid until the next
    // tick (a node the map drops is closed there).
    AsyncRedis *route(uint16_t slot);
    // The connection to the node `at` (made if needed: an ASK's target).
    AsyncRedis &node_at(const HostPort &at) { return *node(at, false).redis; }
    // Queues it on the node `at` (an ASK redirection: ASKING first).
    bool command_at(const HostPort &at, bool asking, const std::vector<std::string_view> &argv,
                    AsyncRedis::Callback cb);
    // Runs `fn` on each master's connection that is up (the one, outside
    // cluster mode).
    void each_up(const std::function<void(AsyncRedis &)> &fn);
    // Asks CLUSTER SLOTS again at the next tick.
    void refresh_soon() { stale_ = true; }
    const SlotMap &map() const { return map_; }
    const RedisUrl &url() const { return url_; }

private:
    struct Node {
        HostPort at;
        std::unique_ptr<AsyncRedis> redis;
        bool seed = false;
        AsyncRedis::Clock::time_point keep_until{};  // an ASK target: kept while a migration runs
    };
    static void tick(void *p);
    Node &node(const HostPort &at, bool seed);
    void reroute();
    void ask_slots();
    void redirected(std::string_view error, const HostPort &from);

    PluginHandle plugin_;
    RedisUrl url_;
    std::chrono::milliseconds timeout_;
    size_t max_pending_;
    std::string name_;
    std::vector<std::unique_ptr<Node>> nodes_;
    // Nodes the map dropped: stopped, kept until the AsyncCluster goes (a
    // write queued for this loop iteration may still name them).
    std::vector<std::unique_ptr<Node>> retired_;
    std::vector<Node *> route_;  // map_.masters()[i] -> its node
    SlotMap map_;
    aurora_timer *timer_ = nullptr;
    bool stale_ = true;
    bool asking_ = false;  // CLUSTER SLOTS in flight
    AsyncRedis::Clock::time_point last_ask_{};
    std::function<void(AsyncRedis &)> on_node_up_, on_node_down_;
    std::function<void()> on_map_;
    std::function<void(AsyncRedis &)> before_write_;
};

}  // namespace aurora::plugin
