// A Redis Cluster client for one worker thread: one RedisConnection per
// master, each command sent to the master of its slot (cluster_slots.h),
// MOVED and ASK redirections followed as the cluster specification says.
//
//     RedisCluster cluster({{"10.0.0.1", 7000}, {"10.0.0.2", 7000}}, "", 500ms);
//     uint16_t slot = key_slot("chat:messages:{3}");
//     RedisReply r = cluster.command(slot, {"XADD", "chat:messages:{3}", "*", "k", "v"}, err);
//
//   - The slot map comes from CLUSTER SLOTS, asked of any master it knows or
//     of the seed nodes, at the first command and again after a MOVED (the
//     one slot is corrected at once and used for the redirected command;
//     the whole map is asked for at the next command) or a connection that
//     failed (a master may have been failed over).
//   - MOVED: the command is sent again to the new master. ASK (a slot being
//     migrated): ASKING and the command, pipelined, to the importing node,
//     for this command only. At most kMaxRedirects hops, then the last
//     error reply is returned.
//   - Every other reply, error replies included (CLUSTERDOWN, TRYAGAIN,
//     CROSSSLOT), is the caller's.
//
// THREADS: one thread owns it (blocking I/O).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cluster_slots.h"
#include "redis_connection.h"

namespace aurora::plugin {

class RedisCluster {
public:
    static constexpr int kMaxRedirects = 5;

    RedisCluster(std::vector<HostPort> seeds, std::string password, std::chrono::milliseconds timeout);

    // One command whose keys are all in `slot`. nullptr with `error` when no
    // master of the slot can be reached (the map is refreshed next time).
    RedisReply command(uint16_t slot, const std::vector<std::string> &argv, std::string &error);
    // The connection of the master serving `slot`, for pipelining commands
    // of that slot; a redirection in one of the replies goes back through
    // redirected(). nullptr with `error` when none can be reached.
    RedisConnection *connection(uint16_t slot, std::string &error);
    // A reply the caller got on connection(slot): true if it is a MOVED
    // (the map is corrected) or an ASK (send that command through command()).
    bool redirected(const redisReply *r, const HostPort &from);

    // Asks CLUSTER SLOTS again. False with `error` when no node answers.
    bool refresh(std::string &error);
    const SlotMap &map() const { return map_; }
    // Redirections followed and map refreshes, since construction (tests,
    // metrics).
    uint64_t redirects() const { return redirects_; }
    uint64_t refreshes() const { return refreshes_; }

private:
    RedisConnection &node(const HostPort &at);
    RedisConnection *route(uint16_t slot, bool may_refresh, std::string &error);

    std::vector<HostPort> seeds_;
    std::string password_;
    std::chrono::milliseconds timeout_;
    std::map<std::pair<std::string, int>, std::unique_ptr<RedisConnection>> nodes_;
    SlotMap map_;
    bool stale_ = true;  // refresh before the next command
    uint64_t redirects_ = 0, refreshes_ = 0;
};

}  // namespace aurora::plugin
