// What the plugin remembers about each local connection, and the addresses
// it currently refuses at the upgrade.
//
// Thread contract: the service thread (hooks, and the limit checker's
// replies on the host's loop). Every access takes `mu_`, held only for a few
// map operations, never across I/O (uncontended since the checker runs on
// the loop too).
#pragma once

#include <aurora/common.h>

#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>

#include "local_window.h"

namespace aurora::ratelimit {

class ConnTable {
public:
    void add(aurora_conn_id id);
    void remove(aurora_conn_id id);

    // Control-message budget of `id`: 0 if allowed, else the wait in ms.
    int64_t control_hit(aurora_conn_id id, const Limit &limit, int64_t now_ms);
    // Records one refusal; true when the connection has now collected more
    // than the abuse limit allows (the caller closes it, once).
    bool abuse_hit(aurora_conn_id id, const Limit &limit, int64_t now_ms);

    // Room membership as the host reports it (on_join / on_leave), to find
    // the room of a frame without "room" the way the chat plugin does: the
    // room joined last; after leaving it, the first remaining room (by
    // name); "" when in none.
    void joined(aurora_conn_id id, std::string_view room);
    void left(aurora_conn_id id, std::string_view room);
    std::string current_room(aurora_conn_id id);

    // Admission (the connection-attempt check): pending from on_connect
    // until the checker decides; a refused connection's messages are
    // dropped, never delivered.
    void set_admission_pending(aurora_conn_id id);
    void admit(aurora_conn_id id);
    void mark_refused(aurora_conn_id id);
    bool refused(aurora_conn_id id);
    // Where a connection's admission stands (Admitted also for an unknown id).
    enum class Admission { Admitted, Pending, Refused };
    Admission admission(aurora_conn_id id);

    // Local pre-check at the upgrade: `addr` is over its budget until `until_ms`.
    void block_address(const std::string &addr, int64_t until_ms);
    bool address_blocked(const std::string &addr, int64_t now_ms);

private:
    struct Conn {
        LocalWindow control;
        LocalWindow refusals;
        bool pending = false;  // admission not decided yet
        bool refused = false;
        bool closing = false;  // closed for abuse: report it once
        std::set<std::string, std::less<>> rooms;
        std::string current_room;
    };
    std::mutex mu_;
    std::unordered_map<aurora_conn_id, Conn> conns_;           // guarded by mu_
    std::unordered_map<std::string, int64_t> blocked_until_;  // guarded by mu_
};

}  // namespace aurora::ratelimit
