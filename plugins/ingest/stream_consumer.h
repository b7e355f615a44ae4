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
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ingest_context.h"
#include "message_changes.h"
#include "message_writer.h"
#include "stream_entry.h"

namespace aurora::ingest {

// One document being built (RAII over bson_t).
struct BsonDoc {
    bson_t doc = BSON_INITIALIZER;
    BsonDoc() = default;
    BsonDoc(const BsonDoc &) = delete;
    BsonDoc &operator=(const BsonDoc &) = delete;
    ~BsonDoc() { bson_destroy(&doc); }
};

class StreamConsumer {
public:
    // `shard`: which stream it reads (cluster mode; 0 otherwise).
    StreamConsumer(IngestContext &ctx, int index, int shard);
    void run(aurora_worker *w);
    const std::string &name() const { return name_; }

private:
    enum class Source { Own, New, Claimed };
    bool connect(std::string &err);
    bool ensure_group(std::string &err);
    std::vector<StreamEntry> read_batch(Source &src, bool &failed);
    bool fill_deliveries(std::vector<StreamEntry> &batch);
    // A batch's state through process(): its documents (doc_entry maps each
    // to its entry), and per entry whether it is done (stored, duplicate, or
    // nothing to store) or why it failed.
    struct BatchState {
        explicit BatchState(size_t n) : failure(n), done(n, false) {}
        std::vector<std::unique_ptr<BsonDoc>> docs;
        std::vector<const bson_t *> doc_ptrs;
        std::vector<size_t> doc_entry;
        // Changes to messages (message_changes.h): stored and folded after
        // the batch's messages, so that a change of a message of the same
        // batch finds it.
        std::vector<std::unique_ptr<BsonDoc>> change_docs;
        std::vector<const bson_t *> change_ptrs;
        std::vector<size_t> change_entry;
        std::vector<std::string> failure;
        std::vector<bool> done;
    };
    void process(std::vector<StreamEntry> &batch, Source src);
    void build_documents(const std::vector<StreamEntry> &batch, BatchState &st);
    std::optional<WriteResult> insert(const std::vector<StreamEntry> &batch, const BatchState &st);
    void record_writes(const std::vector<StreamEntry> &batch, const WriteResult &res, uint64_t now_ms,
                       BatchState &st);
    // False: the host stops meanwhile (the changes stay pending).
    bool apply_changes(const std::vector<StreamEntry> &batch, BatchState &st);
    bool acknowledge(const std::vector<StreamEntry> &batch, const BatchState &st);
    void retry_or_dead_letter(std::vector<StreamEntry> &batch, uint64_t now_ms, const BatchState &st);
    bool wait_backoff(int64_t &backoff_ms);
    void keep_ownership(const std::vector<StreamEntry> &batch);
    void redis_failed(const std::string &err);

    IngestContext &ctx_;
    int index_;
    std::string name_;
    const std::string stream_, dead_stream_;
    plugin::RedisConnection redis_;
    MessageWriter writer_;
    ChangeWriter changes_;
    aurora_worker *w_ = nullptr;
    bool group_ready_ = false;
    bool redis_warned_ = false;
    bool own_done_ = false;        // own pending entries drained since the last (re)connect
    std::string own_cursor_ = "0";
    std::chrono::steady_clock::time_point next_claim_{};
    std::string claim_cursor_ = "0-0";
};

}  // namespace aurora::ingest
