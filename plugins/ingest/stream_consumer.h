// One consumer of the group: a host worker thread with its own Redis
// connection. Reads its own pending entries first (XREADGROUP ... 0), then
// new ones (>), and every `claim_interval_ms` claims entries idle longer than
// `claim_idle_ms` on any consumer (XAUTOCLAIM): a crashed worker's batch, or
// entries that failed earlier. Each batch is one unordered insert_many;
// entries stored (or found already stored) are acknowledged, entries that
// failed stay pending until their Nth delivery, then go to the dead-letter
// stream. While MongoDB is down the batch is retried with capped exponential
// backoff and stays owned (XCLAIM JUSTID refreshes its idle time without
// counting a delivery). Nothing is acknowledged before it is stored.
//
// Thread contract: a StreamConsumer is used by its own worker thread only;
// it reads the shared IngestContext (see ingest_context.h).
#pragma once

#include <aurora/aurora.h>

#include <chrono>
#include <string>
#include <vector>

#include "ingest_context.h"
#include "message_writer.h"
#include "stream_entry.h"

namespace aurora::ingest {

class StreamConsumer {
public:
    StreamConsumer(IngestContext &ctx, int index);
    void run(aurora_worker *w);
    const std::string &name() const { return name_; }

private:
    enum class Source { Own, New, Claimed };
    bool connect(std::string &err);
    bool ensure_group(std::string &err);
    std::vector<StreamEntry> read_batch(Source &src, bool &failed);
    bool fill_deliveries(std::vector<StreamEntry> &batch);
    void process(std::vector<StreamEntry> &batch, Source src);
    bool wait_backoff(int64_t &backoff_ms);
    void keep_ownership(const std::vector<StreamEntry> &batch);
    void redis_failed(const std::string &err);

    IngestContext &ctx_;
    int index_;
    std::string name_;
    plugin::RedisConnection redis_;
    MessageWriter writer_;
    aurora_worker *w_ = nullptr;
    bool group_ready_ = false;
    bool redis_warned_ = false;
    bool own_done_ = false;        // own pending entries drained since the last (re)connect
    std::string own_cursor_ = "0";
    std::chrono::steady_clock::time_point next_claim_{};
    std::string claim_cursor_ = "0-0";
};

}  // namespace aurora::ingest
