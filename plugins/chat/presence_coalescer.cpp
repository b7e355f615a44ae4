#include "presence_coalescer.h"

#include "chat_protocol.h"

namespace aurora::chat {

void PresenceCoalescer::change(aurora_conn_id conn, const std::string &room, bool present, std::string_view user_id,
                               std::string_view username, Clock::time_point now) {
    Shown &s = conns_[{room, conn}];
    s.present = present;
    if (present) {  // a leave keeps the names of the join it undoes
        s.user_id = user_id;
        s.username = username;
    }
    auto [w, opened] = windows_.try_emplace(room);
    if (opened) closing_.emplace_back(now + window_, room);
    w->second.insert(conn);
}

std::vector<PresenceCoalescer::Event> PresenceCoalescer::due(Clock::time_point now) {
    std::vector<Event> out;
    while (!closing_.empty() && closing_.front().first <= now) {
        const std::string room = std::move(closing_.front().second);
        closing_.pop_front();
        auto w = windows_.find(room);
        if (w == windows_.end()) continue;
        for (aurora_conn_id conn : w->second) {
            auto it = conns_.find({room, conn});
            if (it == conns_.end()) continue;
            Shown &s = it->second;
            if (s.present != s.shown) {
                out.push_back(Event{room, presence_event_json(room, s.present, s.username, s.user_id)});
                s.shown = s.present;
            } else {
                ++cancelled_;
            }
            if (!s.shown) conns_.erase(it);
        }
        windows_.erase(w);
    }
    return out;
}

std::optional<PresenceCoalescer::Clock::time_point> PresenceCoalescer::next_due() const {
    if (closing_.empty()) return std::nullopt;
    return closing_.front().first;
}

}  // namespace aurora::chat
