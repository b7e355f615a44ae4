// Writes a batch of documents with one unordered insert_many and says, per
// document, what happened: stored, already there (duplicate key on streamId:
// an earlier delivery stored it, which counts as success), or refused by the
// server (kept for retry, then dead-lettered). If the insert as a whole
// failed (no server, network, timeout) nothing is known and `unavailable`
// is set: the caller retries the whole batch.
#pragma once

#include <bson/bson.h>

#include <string>
#include <vector>

#include "mongo_pool.h"

namespace aurora::ingest {

struct WriteResult {
    enum class Doc { Stored, Duplicate, Refused };
    bool unavailable = false;
    std::string error;               // why `unavailable`
    std::vector<Doc> docs;           // one per input document
    std::vector<std::string> errors; // the server's message for Refused documents
};

class MessageWriter {
public:
    MessageWriter(plugin::MongoPool &pool, std::string collection) : pool_(pool), collection_(std::move(collection)) {}
    // Any thread (the pool is thread-safe).
    WriteResult insert(const std::vector<const bson_t *> &docs) const;

private:
    plugin::MongoPool &pool_;
    std::string collection_;
};

// Which unique index makes a redelivered entry a duplicate.
enum class UniqueKey {
    StreamId,      // {streamId: 1}: the seed's, one stream
    RoomStreamId,  // {roomId: 1, streamId: 1}: cluster mode (ids are unique per
                   // stream, a room lives in one), and a sharded collection
};

struct IndexReport {
    // RoomStreamId outside cluster mode on a collection that still has the
    // seed's streamId_1: harmless (one stream), but MongoDB will not shard a
    // collection with a unique index the shard key does not prefix.
    bool stream_index_left = false;
};

// Creates the indexes the plugin relies on: the unique one (before any
// insert), and with `secondary` {roomId:1, createdAt:-1} (history) and
// {userId:1} (seed §6.2). Idempotent; never drops an index. False with
// `error` if MongoDB refused or is unreachable, or (`cluster`) if the
// collection has streamId_1, which would refuse two shards' equal ids.
bool create_indexes(plugin::MongoPool &pool, const std::string &collection, bool secondary, UniqueKey key,
                    bool cluster, IndexReport &report, std::string &error);

// A cheap round trip ({ping: 1}) to tell whether MongoDB is reachable.
bool ping(plugin::MongoPool &pool, std::string &error);

}  // namespace aurora::ingest
