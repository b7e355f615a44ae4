// Retention: how long the stream and the stored messages keep what they
// hold (docs/ingest.md, "Retention"). Both run on the group monitor's
// thread.
//
// The stream: XTRIM MINID at the oldest entry some consumer group still
// needs (its oldest pending entry, or the one after the last it was given)
// or the keep cutoff, whichever is older. An entry no group has
// acknowledged is never trimmed, however long ingest is down; chat's
// stream_maxlen has no such guarantee and should be 0 when this is on.
//
// The messages: deleteMany by createdAt, per room where room_retention
// says so, else retention_s; their changes go with them. FerretDB has no
// TTL index, and one TTL index could not express per-room times anyway.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ingest_context.h"
#include "stream_id.h"

namespace aurora::ingest {

using plugin::StreamId;

// The trim point from XINFO GROUPS and each group's oldest pending id:
// entries older than the result may go. nullopt: no group (nothing is
// known to be stored: keep everything).
struct GroupPosition {
    StreamId last_delivered;
    std::optional<StreamId> oldest_pending;
};
std::optional<StreamId> safe_trim_point(const std::vector<GroupPosition> &groups, StreamId keep_cutoff);

// Trims one stream (shard). False with `error` when Redis failed.
bool trim_stream(IngestContext &ctx, plugin::RedisConnection &redis, int shard, std::string &error);

// Deletes expired messages and changes. False with `error` when MongoDB failed.
bool expire_messages(IngestContext &ctx, std::string &error);

}  // namespace aurora::ingest
