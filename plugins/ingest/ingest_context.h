// What every part of the ingest plugin shares: the host, the settings, the
// MongoDB pool, the metrics and the health flags.
//
// Thread contract: everything but the atomics and the consumer registry is
// written by init on the main thread before any thread starts, then only
// read. The atomics are written by the consumer and maintenance threads and
// read by is_ready (service thread). The registry is guarded by `mu`.
#pragma once

#include <aurora/aurora.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "plugin_handle.h"
#include "ingest_settings.h"
#include "message_writer.h"
#include "mongo_pool.h"
#include "redis_connection.h"

namespace aurora::ingest {

struct IngestMetrics {
    aurora_metric *persisted = nullptr, *changes = nullptr, *duplicates = nullptr, *acked = nullptr;
    aurora_metric *failed_entries = nullptr, *dead_letters = nullptr, *reclaimed = nullptr, *reaped = nullptr;
    aurora_metric *insert_errors = nullptr, *trimmed = nullptr, *trim_passes = nullptr, *expired = nullptr;
    aurora_metric *lag = nullptr, *pending = nullptr, *dead_letter_length = nullptr;
    aurora_metric *mongo_up = nullptr, *redis_up = nullptr;
    aurora_metric *batch_size = nullptr, *insert_seconds = nullptr, *persist_lag_seconds = nullptr;
    aurora_metric *history_requests = nullptr, *history_rejected = nullptr, *history_errors = nullptr;
    aurora_metric *history_seconds = nullptr;
    aurora_metric *uploads = nullptr, *upload_bytes = nullptr, *upload_rejected = nullptr, *downloads = nullptr;
};

struct IngestContext : plugin::PluginHandle {  // host, self, log()
    IngestSettings s;
    plugin::RedisUrl redis_url;
    std::unique_ptr<plugin::MongoPool> mongo;  // writers and history: socketTimeoutMS = mongo_op_timeout_ms
    std::unique_ptr<plugin::MongoPool> probe;  // the health ping: socketTimeoutMS = mongo_timeout_ms
    std::string consumer_prefix;  // consumer names: prefix + "-" + worker index
    IngestMetrics m;

    std::atomic<bool> indexes_ready{false};  // the unique streamId index exists: inserts may start
    std::atomic<bool> mongo_up{false};       // last MongoDB outcome
    std::atomic<bool> redis_up{false};       // last Redis outcome of the consumers
    std::atomic<bool> mongo_warned{false};   // one log line per MongoDB outage

    // Cluster mode (docs/scaling.md): the stream is split in `shards`
    // streams, "<stream>:{s}", each with its own group and dead-letter
    // stream "<dead_letter_stream>:{s}" (the same hash tag: one slot).
    int shards = 0;  // 0: one stream, the seed's
    UniqueKey unique_key = UniqueKey::StreamId;  // from the setting and the mode
    std::string stream(int shard) const { return shards ? s.stream + ":{" + std::to_string(shard) + "}" : s.stream; }
    std::string dead_letter_stream(int shard) const {
        return shards ? s.dead_letter_stream + ":{" + std::to_string(shard) + "}" : s.dead_letter_stream;
    }

    // Redis CLIENT IDs of the consumers' connections, and the server each is
    // on, so that the maintenance thread can CLIENT UNBLOCK a blocked
    // XREADGROUP at shutdown.
    struct ConsumerClient {
        long long id;
        plugin::HostPort server;
    };
    std::mutex mu;
    std::map<int, ConsumerClient> consumer_clients;  // guarded by mu

    // Ready means able to do this process's main job. With consumers, that
    // is persisting: the store and Redis must work. Without (a chat
    // replica that serves history only), a store outage is no reason to
    // pull the replica from a load balancer: sending still works, and
    // history answers `unavailable` until the store is back.
    bool ready() const {
        return s.workers == 0 || (indexes_ready.load() && mongo_up.load() && redis_up.load());
    }

    void set_mongo(bool up, const std::string &why = {}) {
        mongo_up.store(up);
        host->metric_set(m.mongo_up, up ? 1 : 0);
        if (up) {
            if (mongo_warned.exchange(false)) log(AURORA_LOG_INFO, "MongoDB is back");
        } else if (!mongo_warned.exchange(true)) {
            log(AURORA_LOG_WARN, "MongoDB unavailable: %s (retrying with backoff)", why.c_str());
        }
    }
};

}  // namespace aurora::ingest
