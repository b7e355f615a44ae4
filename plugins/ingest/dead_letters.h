// Moves entries that failed `max_deliveries` times to the dead-letter stream
// and acknowledges them, atomically (MULTI/EXEC): an entry is either still
// pending in the group or in the dead-letter stream, never lost, never both
// for long. Each dead letter keeps the original fields and adds originalId,
// error, deliveries, consumer and deadAt (ms). docs/ingest.md says how to
// inspect and replay them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ingest_settings.h"
#include "redis_connection.h"
#include "stream_entry.h"

namespace aurora::ingest {

struct DeadLetter {
    const StreamEntry *entry;
    std::string error;
};

// False with `error` if Redis failed: the entries stay pending and are
// dead-lettered on a later delivery.
// `stream` and `dead_stream` share a slot in cluster mode (one MULTI).
bool move_to_dead_letters(plugin::RedisConnection &redis, const std::string &stream, const std::string &dead_stream,
                          const std::string &group, const std::string &consumer,
                          const std::vector<DeadLetter> &letters, uint64_t now_ms, std::string &error);

}  // namespace aurora::ingest
