// Stream entries as the consumer sees them: parsed from XREADGROUP and
// XAUTOCLAIM replies, with the id split into its two numbers.
#pragma once

#include <hiredis/hiredis.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aurora::ingest {

struct StreamId {
    uint64_t ms = 0;
    uint64_t seq = 0;
    auto operator<=>(const StreamId &) const = default;
    static std::optional<StreamId> parse(std::string_view s);  // "<ms>-<seq>" (or "<ms>")
    std::string str() const { return std::to_string(ms) + "-" + std::to_string(seq); }
};

struct StreamEntry {
    std::string id;
    StreamId sid;
    bool deleted = false;  // pending but no longer in the stream (trimmed or XDEL'd)
    std::map<std::string, std::string> fields;
    int64_t deliveries = 1;  // from XPENDING when not a first delivery

    const std::string *field(const char *name) const {
        auto it = fields.find(name);
        return it == fields.end() ? nullptr : &it->second;
    }
};

// The entries of an array of [id, [field, value, ...]] (nil fields: deleted).
std::vector<StreamEntry> parse_entries(const redisReply *array);

// XREADGROUP reply: [[stream, entries]] or nil.
std::vector<StreamEntry> parse_readgroup(const redisReply *reply);

}  // namespace aurora::ingest
