// Presence events, coalesced per room: the joins and leaves of a room are
// held for presence_coalesce_ms from the first change, then only the net
// change of each connection is published, in the usual event format. A leave
// and a join of the same connection within the window cancel out; a
// connection that flaps for as long as it likes costs each member at most one
// event per window (it used to cost two per flap: 300 leave/join pairs sent
// 276 events to a member). The sorted set behind snapshots is not delayed:
// a snapshot is the truth, events are its changes.
//
// Thread contract: the send pipeline's thread only (no locking).
#pragma once

#include <aurora/aurora.h>

#include <chrono>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace aurora::chat {

class PresenceCoalescer {
public:
    using Clock = std::chrono::steady_clock;
    struct Event {
        std::string room;
        std::string json;  // {"type":"presence","room":R,"event":"join"|"leave",...}
    };

    explicit PresenceCoalescer(std::chrono::milliseconds window) : window_(window) {}

    // The connection is now in the room (present) or not.
    void change(aurora_conn_id conn, const std::string &room, bool present, std::string_view user_id,
                std::string_view username, Clock::time_point now);
    // The events of every window that has closed by `now` (all of them when
    // `now` is Clock::time_point::max()), in the order to publish them.
    std::vector<Event> due(Clock::time_point now);
    // When the next window closes, if one is open.
    std::optional<Clock::time_point> next_due() const;
    // Changes that cancelled out so far (a metric).
    uint64_t cancelled() const { return cancelled_; }

private:
    struct Shown {
        bool shown = false;    // what the last published event said
        bool present = false;  // what is true now
        std::string user_id, username;
    };

    std::chrono::milliseconds window_;
    // Connections shown as present, or with a change in an open window.
    std::map<std::pair<std::string, aurora_conn_id>, Shown> conns_;
    // Rooms with an open window: who changed, and when each window closes,
    // in opening order (every window is as long, so that is closing order).
    std::map<std::string, std::set<aurora_conn_id>> windows_;
    std::deque<std::pair<Clock::time_point, std::string>> closing_;
    uint64_t cancelled_ = 0;
};

}  // namespace aurora::chat
