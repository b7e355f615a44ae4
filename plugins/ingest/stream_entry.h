// Stream entries as the consumer sees them: parsed from XREADGROUP and
// XAUTOCLAIM replies, with the id split into its two numbers.
#pragma once

#include <hiredis/hiredis.h>

#include "stream_id.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aurora::ingest {

using plugin::StreamId;  // plugins/common/stream_id.h

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
