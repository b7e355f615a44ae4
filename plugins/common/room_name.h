// Room names as the bundled plugins accept them (docs/protocol.md, "Rooms"):
// 1-64 characters of [A-Za-z0-9_.:-]. Chat checks what clients join and
// send to; ingest checks the room of a history request by the same rule.
#pragma once

#include <string_view>

namespace aurora::plugin {

inline bool valid_room(std::string_view room) {
    if (room.empty() || room.size() > 64) return false;
    for (char c : room) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                  c == '.' || c == ':' || c == '-';
        if (!ok) return false;
    }
    return true;
}

}  // namespace aurora::plugin
