// Redis Cluster's key routing, written against the cluster specification
// (https://redis.io/docs/reference/cluster-spec/): which of the 16384 hash
// slots a key (or a shard channel) is in, which master serves a slot, and
// what a MOVED / ASK redirection says. Pure functions and one map: no I/O,
// so the clients of both kinds (the loop's and the worker threads') share
// them, and they are tested without a server.
//
//     uint16_t s = key_slot("chat:messages:{3}");     // hashes "3" only
//     SlotMap map;
//     if (!map.load(cluster_slots_reply, err)) ...;    // CLUSTER SLOTS
//     const HostPort *node = map.master(s);            // nullptr: not served
//     if (auto r = parse_redirect(error_text)) ...     // "MOVED 3999 10.0.0.2:6381"
//
// THREADS: any; a SlotMap is not synchronised (one per client).
#pragma once

#include <hiredis/hiredis.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "redis_connection.h"  // HostPort

namespace aurora::plugin {

inline constexpr uint16_t kClusterSlots = 16384;

// CRC16-CCITT (XMODEM: polynomial 0x1021, initial 0), as the specification's
// reference implementation: crc16("123456789") == 0x31C3.
uint16_t crc16(std::string_view data);

// The slot of a key: CRC16 mod 16384 of the key, or of its hash tag, the
// text between the first '{' and the first '}' after it when that text is
// not empty ("{user1000}.following" and "{user1000}.followers" share a
// slot; "foo{}{bar}" hashes the whole key).
uint16_t key_slot(std::string_view key);

// "MOVED <slot> <host>:<port>" or "ASK <slot> <host>:<port>" (an error
// reply's text). An empty host ("MOVED 3999 :6380", a node that does not
// know its own address) is the node that answered: `from` fills it.
struct Redirect {
    enum class Kind { Moved, Ask } kind;
    uint16_t slot;
    HostPort to;
};
std::optional<Redirect> parse_redirect(std::string_view error, const HostPort &from = {});

// Which master serves each slot.
class SlotMap {
public:
    // From a CLUSTER SLOTS reply: [[first, last, [host, port, id...],
    // replicas...]...]. False (the map unchanged) with `error` if it is not
    // one. `from` fills the host of a node that does not know its own.
    bool load(const redisReply *slots, std::string &error, const HostPort &from = {});
    // The master of `slot`, or nullptr when no node serves it (a map not
    // loaded yet, or a cluster with uncovered slots).
    const HostPort *master(uint16_t slot) const;
    // The same as an index into masters(), -1 when no node serves it.
    int master_index(uint16_t slot) const { return static_cast<int>(owner_[slot & (kClusterSlots - 1)]) - 1; }
    // A MOVED redirection: `slot` is served by `to` from now on.
    void moved(uint16_t slot, const HostPort &to);
    // Every master the map names, each once.
    const std::vector<HostPort> &masters() const { return nodes_; }
    bool empty() const { return nodes_.empty(); }

private:
    uint16_t node_index(const HostPort &node);

    std::vector<HostPort> nodes_;
    // slot -> index into nodes_ + 1 (0: not served)
    std::array<uint16_t, kClusterSlots> owner_{};
};

}  // namespace aurora::plugin
