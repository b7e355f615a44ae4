// Redis stream ids ("<ms>-<seq>"): parse and compare. Ids increase with every
// XADD to a stream, so they order a room's messages on every replica. Shared
// by the chat plugin (resume) and the ingest plugin (history cursors).
#pragma once

#include <charconv>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace aurora::plugin {

struct StreamId {
    uint64_t ms = 0;
    uint64_t seq = 0;
    auto operator<=>(const StreamId &) const = default;

    static std::optional<StreamId> parse(std::string_view s) {
        size_t dash = s.find('-');
        StreamId id;
        auto num = [](std::string_view t, uint64_t &v) {
            auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
            return !t.empty() && ec == std::errc() && p == t.data() + t.size();
        };
        if (dash == std::string_view::npos) {
            if (!num(s, id.ms)) return std::nullopt;
            return id;  // "<ms>" alone means "<ms>-0"
        }
        if (!num(s.substr(0, dash), id.ms) || !num(s.substr(dash + 1), id.seq)) return std::nullopt;
        return id;
    }
    std::string str() const { return std::to_string(ms) + "-" + std::to_string(seq); }
};

}  // namespace aurora::plugin
