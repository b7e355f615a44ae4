// Room membership on this replica: the members of each room, and each
// connection's rooms (aurora_conn::rooms), kept in step.
//
// THREADS: [service] only. The limits and the on_join/on_leave hooks are the
// host's (Host::room_join/room_leave); this part is the data.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "conn.h"

namespace aurora::host {

class Rooms {
public:
    bool has(const aurora_conn *c, std::string_view room) const;
    uint32_t size(std::string_view room) const;
    void add(aurora_conn *c, std::string_view room);
    // Removes c from `room`; false if it was not in it. `name` receives the
    // room's name (the caller's view may point into what is removed).
    bool remove(aurora_conn *c, std::string_view room, std::string &name);

    // f(member) for each member of `room`. f may close a member but must not
    // change membership: members leave only in Host::finish_conn.
    template <typename F>
    void for_each_member(std::string_view room, F &&f) const {
        auto it = members_.find(std::string(room));
        if (it == members_.end()) return;
        for (aurora_conn *c : it->second) f(c);
    }

private:
    std::unordered_map<std::string, std::unordered_set<aurora_conn *>> members_;
};

}  // namespace aurora::host
