// Room membership, both ways.
#include "rooms.h"

#include <algorithm>

namespace aurora::host {

bool Rooms::has(const aurora_conn *c, std::string_view room) const {
    return std::find(c->rooms.begin(), c->rooms.end(), room) != c->rooms.end();
}

uint32_t Rooms::size(std::string_view room) const {
    auto it = members_.find(std::string(room));
    return it == members_.end() ? 0 : static_cast<uint32_t>(it->second.size());
}

void Rooms::add(aurora_conn *c, std::string_view room) {
    c->rooms.emplace_back(room);
    members_[std::string(room)].insert(c);
}

bool Rooms::remove(aurora_conn *c, std::string_view room, std::string &name) {
    auto pos = std::find(c->rooms.begin(), c->rooms.end(), room);
    if (pos == c->rooms.end()) return false;
    name = std::move(*pos);
    c->rooms.erase(pos);
    if (auto it = members_.find(name); it != members_.end()) {
        it->second.erase(c);
        if (it->second.empty()) members_.erase(it);
    }
    return true;
}

}  // namespace aurora::host
