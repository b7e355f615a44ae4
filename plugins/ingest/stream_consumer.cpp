#include "stream_consumer.h"

#include <algorithm>
#include <set>

#include "dead_letters.h"
#include "cluster_slots.h"
#include "message_document.h"

namespace aurora::ingest {

namespace {

using Clock = std::chrono::steady_clock;

std::string reply_error(const redisReply *r) {
    return r && r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len) : std::string("unexpected reply");
}

}  // namespace

namespace {
// Cluster mode: the connection goes to the master of the shard's slot.
plugin::RedisUrl shard_url(const IngestContext &ctx, const std::string &stream) {
    plugin::RedisUrl u = ctx.redis_url;
    if (ctx.shards) u.slot = plugin::key_slot(stream);
    return u;
}
}  // namespace

StreamConsumer::StreamConsumer(IngestContext &ctx, int index, int shard)
    : ctx_(ctx),
      index_(index),
      name_(ctx.consumer_prefix + "-" + std::to_string(index)),
      stream_(ctx.stream(shard)),
      dead_stream_(ctx.dead_letter_stream(shard)),
      // A blocked XREADGROUP must not hit the socket timeout.
      redis_(shard_url(ctx, stream_), std::chrono::milliseconds(ctx.s.redis_timeout_ms + ctx.s.block_ms)),
      writer_(*ctx.mongo, ctx.s.collection),
      changes_(*ctx.mongo, ctx.s.collection, ctx.s.changes_collection, ctx.s.search) {}

void StreamConsumer::redis_failed(const std::string &err) {
    redis_.reset();
    group_ready_ = false;
    ctx_.redis_up.store(false);
    ctx_.host->metric_set(ctx_.m.redis_up, 0);
    if (!redis_warned_) ctx_.log(AURORA_LOG_WARN, "%s: Redis unavailable: %s", name_.c_str(), err.c_str());
    redis_warned_ = true;
}

bool StreamConsumer::connect(std::string &err) {
    if (redis_.connected()) return true;
    if (!redis_.ensure(err)) return false;
    plugin::RedisReply id = redis_.command({"CLIENT", "ID"}, err);
    if (!id || id->type != REDIS_REPLY_INTEGER) {
        if (id) err = reply_error(id.get());
        redis_.reset();
        return false;
    }
    std::lock_guard lock(ctx_.mu);
    ctx_.consumer_clients[index_] = IngestContext::ConsumerClient{id->integer, redis_.server()};
    // A new connection may be a restarted, empty Redis: look at our own
    // pending entries again before new ones.
    own_done_ = false;
    own_cursor_ = "0";
    return true;
}

bool StreamConsumer::ensure_group(std::string &err) {
    if (group_ready_) return true;
    plugin::RedisReply r = redis_.command({"XGROUP", "CREATE", stream_, ctx_.s.group, "0", "MKSTREAM"}, err);
    if (!r) return false;
    if (r->type == REDIS_REPLY_ERROR && std::string_view(r->str, r->len).find("BUSYGROUP") == std::string_view::npos) {
        err = reply_error(r.get());
        return false;
    }
    group_ready_ = true;
    if (redis_warned_) ctx_.log(AURORA_LOG_INFO, "%s: Redis is back", name_.c_str());
    redis_warned_ = false;
    ctx_.redis_up.store(true);
    ctx_.host->metric_set(ctx_.m.redis_up, 1);
    return true;
}

std::vector<StreamEntry> StreamConsumer::read_batch(Source &src, bool &failed) {
    const IngestSettings &s = ctx_.s;
    const std::string count = std::to_string(s.batch);
    std::string err;
    failed = false;
    auto check = [&](const plugin::RedisReply &r) {
        if (!r) {
            redis_failed(err);
            failed = true;
            return false;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            std::string e = reply_error(r.get());
            if (e.find("NOGROUP") != std::string::npos) group_ready_ = false;  // Redis lost the group: recreate
            redis_failed(e);
            failed = true;
            return false;
        }
        return true;
    };
    if (!own_done_) {
        plugin::RedisReply r = redis_.command(
            {"XREADGROUP", "GROUP", s.group, name_, "COUNT", count, "STREAMS", stream_, own_cursor_}, err);
        if (!check(r)) return {};
        std::vector<StreamEntry> batch = parse_readgroup(r.get());
        if (batch.empty()) {
            own_done_ = true;
        } else {
            own_cursor_ = batch.back().id;
            src = Source::Own;
            return batch;
        }
    }
    if (own_done_ && Clock::now() >= next_claim_) {
        next_claim_ = Clock::now() + std::chrono::milliseconds(s.claim_interval_ms);
        plugin::RedisReply r = redis_.command({"XAUTOCLAIM", stream_, s.group, name_, std::to_string(s.claim_idle_ms),
                                               claim_cursor_, "COUNT", count},
                                              err);
        if (!check(r)) return {};
        if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2) {
            claim_cursor_ = r->element[0]->type == REDIS_REPLY_STRING ? std::string(r->element[0]->str, r->element[0]->len)
                                                                      : std::string("0-0");
            // A full page: there may be more; look again soon.
            if (claim_cursor_ != "0-0") next_claim_ = Clock::now();
            std::vector<StreamEntry> batch = parse_entries(r->element[1]);
            if (!batch.empty()) {
                ctx_.host->metric_add(ctx_.m.reclaimed, static_cast<double>(batch.size()));
                ctx_.log(AURORA_LOG_INFO, "%s: claimed %zu entries idle for more than %lld ms", name_.c_str(),
                         batch.size(), static_cast<long long>(s.claim_idle_ms));
                src = Source::Claimed;
                return batch;
            }
        }
    }
    // Block no longer than the next XAUTOCLAIM is due, so that an idle
    // stream does not delay the retry of failed or orphaned entries.
    auto until_claim = std::chrono::duration_cast<std::chrono::milliseconds>(next_claim_ - Clock::now()).count();
    const int64_t block = std::clamp<int64_t>(until_claim, 1, s.block_ms);
    plugin::RedisReply r = redis_.command({"XREADGROUP", "GROUP", s.group, name_, "COUNT", count, "BLOCK",
                                           std::to_string(block), "STREAMS", stream_, ">"},
                                          err);
    if (!check(r)) return {};
    src = Source::New;
    return parse_readgroup(r.get());
}

// Delivery counts of entries that are not first deliveries (XPENDING, one
// pipelined round trip). Entries no longer pending (another consumer
// acknowledged them meanwhile) are removed from the batch.
bool StreamConsumer::fill_deliveries(std::vector<StreamEntry> &batch) {
    std::string err;
    for (const StreamEntry &e : batch) redis_.append({"XPENDING", stream_, ctx_.s.group, e.id, e.id, "1"});
    std::vector<bool> keep(batch.size(), true);
    for (size_t i = 0; i < batch.size(); ++i) {
        plugin::RedisReply r = redis_.read(err);
        if (!r) {
            redis_failed(err);
            return false;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
            keep[i] = false;
            continue;
        }
        const redisReply *p = r->element[0];
        if (p->type == REDIS_REPLY_ARRAY && p->elements >= 4 && p->element[3]->type == REDIS_REPLY_INTEGER)
            batch[i].deliveries = p->element[3]->integer;
    }
    size_t i = 0;
    std::erase_if(batch, [&](const StreamEntry &) { return !keep[i++]; });
    return true;
}

bool StreamConsumer::wait_backoff(int64_t &backoff_ms) {
    bool stop = ctx_.host->worker_wait(w_, static_cast<uint32_t>(backoff_ms));
    backoff_ms = std::min(backoff_ms * 2, ctx_.s.backoff_max_ms);
    return stop;
}

// While a batch waits for MongoDB, reset its entries' idle time so that no
// other worker claims them (JUSTID: the delivery count does not grow).
void StreamConsumer::keep_ownership(const std::vector<StreamEntry> &batch) {
    std::vector<std::string> argv{"XCLAIM", stream_, ctx_.s.group, name_, "0"};
    for (const StreamEntry &e : batch) argv.push_back(e.id);
    argv.push_back("JUSTID");
    std::string err;
    if (!redis_.connected() && !redis_.ensure(err)) return;
    plugin::RedisReply r = redis_.command(argv, err);
    if (!r) redis_failed(err);
}

// One batch: documents built, inserted (retrying while MongoDB is down),
// acknowledged when stored, and the failures retried or dead-lettered.
void StreamConsumer::process(std::vector<StreamEntry> &batch, Source src) {
    if (src != Source::New && !fill_deliveries(batch)) return;  // Redis failed: the entries stay pending
    if (batch.empty()) return;
    ctx_.host->metric_observe(ctx_.m.batch_size, static_cast<double>(batch.size()));
    BatchState st(batch.size());
    build_documents(batch, st);
    std::optional<WriteResult> res = insert(batch, st);
    if (!res) return;  // stopping: nothing acknowledged that is not stored
    const uint64_t now_ms = ctx_.host->now_wall_ms();
    record_writes(batch, *res, now_ms, st);
    if (!apply_changes(batch, st)) return;
    if (!acknowledge(batch, st)) return;
    retry_or_dead_letter(batch, now_ms, st);
}

// Builds the documents; an entry that cannot become one fails now.
void StreamConsumer::build_documents(const std::vector<StreamEntry> &batch, BatchState &st) {
    for (size_t i = 0; i < batch.size(); ++i) {
        if (batch[i].deleted) {
            // Pending but trimmed from the stream: there is nothing left to store.
            ctx_.log(AURORA_LOG_WARN, "%s: entry %s is pending but no longer in %s (trimmed?); acknowledging it",
                     name_.c_str(), batch[i].id.c_str(), stream_.c_str());
            st.done[i] = true;
            continue;
        }
        auto d = std::make_unique<BsonDoc>();
        if (is_change(batch[i])) {
            if (auto why = build_change_document(batch[i], &d->doc, ctx_.s.any_user_id)) {
                st.failure[i] = *why;
                continue;
            }
            st.change_ptrs.push_back(&d->doc);
            st.change_entry.push_back(i);
            st.change_docs.push_back(std::move(d));
            continue;
        }
        if (auto why = build_document(batch[i], &d->doc, ctx_.s.any_user_id, ctx_.s.search)) {
            st.failure[i] = *why;
            continue;
        }
        st.doc_ptrs.push_back(&d->doc);
        st.doc_entry.push_back(i);
        st.docs.push_back(std::move(d));
    }
}

// Inserts; while MongoDB is unavailable, retries with backoff. nullopt: the
// host stops meanwhile (the batch stays pending, unacknowledged).
std::optional<WriteResult> StreamConsumer::insert(const std::vector<StreamEntry> &batch, const BatchState &st) {
    int64_t backoff = ctx_.s.backoff_initial_ms;
    for (;;) {
        auto t0 = Clock::now();
        WriteResult res = writer_.insert(st.doc_ptrs);
        if (!res.unavailable) {
            ctx_.host->metric_observe(ctx_.m.insert_seconds,
                                      std::chrono::duration<double>(Clock::now() - t0).count());
            if (!st.doc_ptrs.empty()) ctx_.set_mongo(true);
            return res;
        }
        ctx_.host->metric_add(ctx_.m.insert_errors, 1);
        ctx_.set_mongo(false, res.error);
        if (wait_backoff(backoff)) return std::nullopt;
        keep_ownership(batch);
    }
}

void StreamConsumer::record_writes(const std::vector<StreamEntry> &batch, const WriteResult &res, uint64_t now_ms,
                                   BatchState &st) {
    const aurora_host_api *host = ctx_.host;
    size_t stored = 0, duplicates = 0;
    for (size_t k = 0; k < st.doc_entry.size(); ++k) {
        size_t i = st.doc_entry[k];
        switch (res.docs[k]) {
        case WriteResult::Doc::Stored:
            ++stored;
            st.done[i] = true;
            if (now_ms >= batch[i].sid.ms)
                host->metric_observe(ctx_.m.persist_lag_seconds, static_cast<double>(now_ms - batch[i].sid.ms) / 1000.0);
            break;
        case WriteResult::Doc::Duplicate:
            ++duplicates;
            st.done[i] = true;
            break;
        case WriteResult::Doc::Refused:
            st.failure[i] = res.errors[k];
            break;
        }
    }
    host->metric_add(ctx_.m.persisted, static_cast<double>(stored));
    host->metric_add(ctx_.m.duplicates, static_cast<double>(duplicates));
}

// Stores the batch's changes and folds them onto their messages; while
// MongoDB is unavailable, retries with backoff. A change whose message is
// not stored yet stays pending (failure): it comes back after
// claim_idle_ms, by when the worker that holds the message has stored it.
bool StreamConsumer::apply_changes(const std::vector<StreamEntry> &batch, BatchState &st) {
    if (st.change_ptrs.empty()) return true;
    int64_t backoff = ctx_.s.backoff_initial_ms;
    for (;;) {
        ChangeWriter::Result res = changes_.apply(st.change_ptrs);
        if (!res.unavailable) {
            ctx_.set_mongo(true);
            size_t applied = 0;
            for (size_t k = 0; k < st.change_entry.size(); ++k) {
                const size_t i = st.change_entry[k];
                switch (res.outcomes[k]) {
                case ChangeWriter::Outcome::Applied:
                    st.done[i] = true;
                    ++applied;
                    break;
                case ChangeWriter::Outcome::MessageMissing:
                    st.failure[i] = "its message " + *batch[i].field("target") + " is not stored yet";
                    break;
                case ChangeWriter::Outcome::Refused: st.failure[i] = res.errors[k]; break;
                }
            }
            ctx_.host->metric_add(ctx_.m.changes, static_cast<double>(applied));
            return true;
        }
        ctx_.host->metric_add(ctx_.m.insert_errors, 1);
        ctx_.set_mongo(false, res.error);
        if (wait_backoff(backoff)) return false;
        keep_ownership(batch);
    }
}

// Acknowledges what is stored. If this fails the entries stay pending, come
// back, and are found already stored (duplicate key): no loss, no second
// document. False when Redis failed.
bool StreamConsumer::acknowledge(const std::vector<StreamEntry> &batch, const BatchState &st) {
    std::vector<std::string> ack{"XACK", stream_, ctx_.s.group};
    for (size_t i = 0; i < batch.size(); ++i)
        if (st.done[i]) ack.push_back(batch[i].id);
    if (ack.size() == 3) return true;
    std::string err;
    plugin::RedisReply r = redis_.connected() || redis_.ensure(err) ? redis_.command(ack, err) : nullptr;
    if (!r || r->type == REDIS_REPLY_ERROR) {
        redis_failed(r ? reply_error(r.get()) : err);
        return false;
    }
    ctx_.host->metric_add(ctx_.m.acked, static_cast<double>(r->integer));
    return true;
}

// Failed entries: retried (claimed after claim_idle_ms) until their Nth
// delivery fails, then dead-lettered.
void StreamConsumer::retry_or_dead_letter(std::vector<StreamEntry> &batch, uint64_t now_ms, const BatchState &st) {
    const IngestSettings &s = ctx_.s;
    std::vector<DeadLetter> dead;
    for (size_t i = 0; i < batch.size(); ++i) {
        if (st.done[i] || st.failure[i].empty()) continue;
        ctx_.host->metric_add(ctx_.m.failed_entries, 1);
        if (batch[i].deliveries >= s.max_deliveries) {
            dead.push_back(DeadLetter{&batch[i], st.failure[i]});
        } else {
            ctx_.log(AURORA_LOG_WARN, "%s: entry %s failed (delivery %lld of %lld): %s", name_.c_str(),
                     batch[i].id.c_str(), static_cast<long long>(batch[i].deliveries),
                     static_cast<long long>(s.max_deliveries), st.failure[i].c_str());
        }
    }
    if (dead.empty()) return;
    std::string err;
    if (!move_to_dead_letters(redis_, stream_, dead_stream_, s.group, name_, dead, now_ms, err)) return redis_failed(err);
    ctx_.host->metric_add(ctx_.m.dead_letters, static_cast<double>(dead.size()));
    for (const DeadLetter &d : dead)
        ctx_.log(AURORA_LOG_ERROR, "%s: entry %s moved to %s after %lld deliveries: %s", name_.c_str(),
                 d.entry->id.c_str(), s.dead_letter_stream.c_str(), static_cast<long long>(d.entry->deliveries),
                 d.error.c_str());
}

void StreamConsumer::run(aurora_worker *w) {
    w_ = w;
    const aurora_host_api *host = ctx_.host;
    next_claim_ = Clock::now();  // after our own pending entries: look for a crashed worker's at once
    while (!host->worker_should_stop(w)) {
        std::string err;
        if (!connect(err) || !ensure_group(err)) {
            if (!err.empty()) redis_failed(err);
            host->worker_wait(w, 100);  // the connection's own backoff spaces the attempts
            continue;
        }
        if (!ctx_.indexes_ready.load()) {  // the unique streamId index must exist before any insert
            host->worker_wait(w, 100);
            continue;
        }
        Source src = Source::New;
        bool failed = false;
        std::vector<StreamEntry> batch = read_batch(src, failed);
        if (failed) {
            host->worker_wait(w, 100);
            continue;
        }
        if (!batch.empty()) process(batch, src);
    }
    std::lock_guard lock(ctx_.mu);
    ctx_.consumer_clients.erase(index_);
}

}  // namespace aurora::ingest
