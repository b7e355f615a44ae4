// The ingest plugin: the seed's Ingestion Service (§4.3) inside the host.
// Consumer threads move the chat stream into MongoDB (stream_consumer.cpp),
// a housekeeping thread creates indexes and watches health
// (group_monitor.cpp), and history threads serve a room's stored messages
// (history_service.cpp). docs/ingest.md is the reader's guide; README.md
// lists the settings.
#include <aurora/aurora.h>

#include <exception>
#include <memory>
#include <vector>

#include "consumer_slot.h"
#include "group_monitor.h"
#include "history_service.h"
#include "ingest_context.h"
#include "json.h"
#include "plugin_handle.h"
#include "stream_consumer.h"
#include "upload_service.h"

namespace aurora::ingest {
namespace {

struct IngestPlugin {
    std::unique_ptr<ConsumerSlot> slot;  // held as long as the consumers use its name
    IngestContext ctx;
    std::vector<std::unique_ptr<StreamConsumer>> consumers;
    std::unique_ptr<plugin::TokenTrust> trust;  // history's bearer tokens; before `history`, which uses it
    std::unique_ptr<HistoryService> history;
    std::unique_ptr<UploadService> uploads;
    bool spawned = false;  // a thread may hold ctx: a failed init must then leave it alive
};

void register_metrics(IngestContext &ctx) {
    const aurora_host_api *h = ctx.host;
    aurora_plugin_ctx *s = ctx.self;
    IngestMetrics &m = ctx.m;
    m.persisted = h->metric_counter(s, "persisted_total", "Messages inserted into MongoDB", nullptr);
    m.trimmed = h->metric_counter(s, "stream_trimmed_total", "Stream entries trimmed once every group had acknowledged them (stream_keep_s)", nullptr);
    m.trim_passes = h->metric_counter(s, "stream_trim_passes_total", "Times the stream's safe trim point was computed (stream_keep_s)", nullptr);
    m.expired = h->metric_counter(s, "messages_expired_total", "Stored messages deleted by retention", nullptr);
    m.changes = h->metric_counter(s, "changes_applied_total", "Changes to messages (edit, delete, reaction) stored and folded onto their message", nullptr);
    m.duplicates = h->metric_counter(s, "duplicates_total", "Entries found already stored (redelivered)", nullptr);
    m.acked = h->metric_counter(s, "acked_total", "Entries acknowledged after being stored", nullptr);
    m.failed_entries = h->metric_counter(s, "failed_entries_total", "Deliveries of entries that could not be stored", nullptr);
    m.dead_letters = h->metric_counter(s, "dead_letters_total", "Entries moved to the dead-letter stream", nullptr);
    m.reclaimed = h->metric_counter(s, "reclaimed_total", "Entries claimed from idle consumers (XAUTOCLAIM)", nullptr);
    m.reaped = h->metric_counter(s, "consumers_reaped_total",
                                 "Consumers deleted from the group: idle past consumer_reap_idle_ms, nothing pending", nullptr);
    m.insert_errors = h->metric_counter(s, "insert_errors_total", "Batches MongoDB did not take (retried)", nullptr);
    m.lag = h->metric_gauge(s, "consumer_lag", "Entries not yet delivered to the group (XINFO GROUPS lag)", nullptr);
    m.pending = h->metric_gauge(s, "pending", "Entries delivered but not acknowledged (group PEL)", nullptr);
    m.dead_letter_length = h->metric_gauge(s, "dead_letter_length", "Entries in the dead-letter stream", nullptr);
    m.mongo_up = h->metric_gauge(s, "mongo_up", "1 while MongoDB takes writes", nullptr);
    m.redis_up = h->metric_gauge(s, "redis_up", "1 while the consumers' Redis connections work", nullptr);
    static const double kBatch[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000};
    m.batch_size = h->metric_histogram(s, "batch_size", "Entries per batch", nullptr, kBatch, std::size(kBatch));
    m.insert_seconds = h->metric_histogram(s, "insert_seconds", "insert_many latency", nullptr, nullptr, 0);
    static const double kLag[] = {0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 300};
    m.persist_lag_seconds = h->metric_histogram(s, "persist_lag_seconds",
                                                "From the stream id's time to the document stored", nullptr, kLag,
                                                std::size(kLag));
    m.history_requests = h->metric_counter(s, "history_requests_total", "History pages served", nullptr);
    m.history_rejected = h->metric_counter(s, "history_rejected_total", "History requests refused (401/400/busy)", nullptr);
    m.history_errors = h->metric_counter(s, "history_errors_total", "History requests MongoDB failed", nullptr);
    m.history_seconds = h->metric_histogram(s, "history_seconds", "History request latency", nullptr, nullptr, 0);
    m.uploads = h->metric_counter(s, "uploads_total", "Files uploaded", nullptr);
    m.upload_bytes = h->metric_counter(s, "upload_bytes_total", "Bytes of files uploaded", nullptr);
    m.upload_rejected = h->metric_counter(s, "upload_rejected_total",
                                          "Uploads and downloads refused (401/400/404/413/415)", nullptr);
    m.downloads = h->metric_counter(s, "downloads_total", "Files served", nullptr);
}

void consumer_main(aurora_worker *w, void *arg) { static_cast<StreamConsumer *>(arg)->run(w); }
void monitor_main(aurora_worker *w, void *arg) { run_group_monitor(*static_cast<IngestContext *>(arg), w); }

aurora_status init_plugin(IngestPlugin &p) {
    IngestContext &ctx = p.ctx;
    const aurora_host_api *host = ctx.host;
    std::string err;
    auto s = load_settings(host->config_json(ctx.self), err);
    if (!s) {
        ctx.log(AURORA_LOG_ERROR, "config: %s", err.c_str());
        return AURORA_ERR_INVALID;
    }
    ctx.s = std::move(*s);
    std::string secret(plugin::view(host->setting(ctx.self, "jwt.secret")));
    if (ctx.s.history) {
        p.trust = plugin::TokenTrust::create(host, ctx.self, secret, ctx.s.jwt_alg, err);
        if (!p.trust) {
            ctx.log(AURORA_LOG_ERROR, "config: %s", err.c_str());
            return AURORA_ERR_INVALID;
        }
    }
    if (ctx.s.history && !p.trust->accepts_any()) {
        ctx.log(AURORA_LOG_ERROR,
                "config: history needs jwt.secret (config \"jwt\": {\"secret\"} or AURORA_JWT_SECRET) or an "
                "identity provider's keys (jwt.keys_file, jwt.jwks_url) to check tokens; set \"history\": false "
                "for a worker that only ingests");
        return AURORA_ERR_INVALID;
    }
    auto redis_url = plugin::redis_target(host, ctx.self, {}, err, /*cluster_ok=*/true);
    if (!redis_url) {
        ctx.log(AURORA_LOG_ERROR, "%s", err.c_str());
        return AURORA_ERR_INVALID;
    }
    ctx.redis_url = *redis_url;
    if (redis_url->cluster()) ctx.shards = redis_url->stream_shards;
    if (ctx.shards && ctx.s.unique_key == "streamId") {
        ctx.log(AURORA_LOG_ERROR, "setting \"unique_key\" \"streamId\" cannot be used in cluster mode: two shards' "
                                  "streams may make the same id (docs/scaling.md)");
        return AURORA_ERR_INVALID;
    }
    ctx.unique_key = ctx.shards || ctx.s.unique_key == "roomId,streamId" ? UniqueKey::RoomStreamId : UniqueKey::StreamId;
    std::string mongo_url(plugin::view(host->setting(ctx.self, "mongo.url")));
    if (mongo_url.empty()) mongo_url = "mongodb://127.0.0.1:27017/aurorachat";
    ctx.mongo = plugin::MongoPool::create(
        mongo_url_with_timeouts(mongo_url, ctx.s.mongo_timeout_ms, ctx.s.mongo_op_timeout_ms), err, host, ctx.self);
    // The health ping's own pool, with the short deadline: a frozen store is
    // reported within mongo_timeout_ms + stats_interval_ms, while a writer's
    // batch may take up to mongo_op_timeout_ms.
    if (ctx.mongo)
        ctx.probe = plugin::MongoPool::create(
            mongo_url_with_timeouts(mongo_url, ctx.s.mongo_timeout_ms, ctx.s.mongo_timeout_ms), err, host, ctx.self);
    if (!ctx.mongo || !ctx.probe) {
        ctx.log(AURORA_LOG_ERROR, "%s", err.c_str());
        return AURORA_ERR_INVALID;
    }
    if (!ctx.s.consumer_name.empty()) {
        ctx.consumer_prefix = ctx.s.consumer_name;
    } else if (ctx.s.workers > 0) {
        // Scoped by stream and group only: processes of one group on one
        // machine must never share a slot, however they spell the Redis URL.
        std::string scope = ctx.s.stream + "\n" + ctx.s.group;
        std::string why;
        p.slot = std::make_unique<ConsumerSlot>(ctx.s.consumer_lock_dir, scope, why);
        if (p.slot->slot() < 0)
            ctx.log(AURORA_LOG_WARN, "consumer names: %s; using %s, which a restart will not keep", why.c_str(),
                    p.slot->name().c_str());
        ctx.consumer_prefix = p.slot->name();
    }
    register_metrics(ctx);

    // Cluster mode: every shard's stream gets ceil(workers / shards)
    // consumers (at least one each, when workers > 0).
    const int shards = std::max(ctx.shards, 1);
    const int consumers = ctx.s.workers == 0 ? 0 : shards * ((ctx.s.workers + shards - 1) / shards);
    for (int i = 0; i < consumers; ++i) p.consumers.push_back(std::make_unique<StreamConsumer>(ctx, i, i % shards));
    if (ctx.s.history) p.history = std::make_unique<HistoryService>(ctx, *p.trust);
    if (ctx.s.uploads) p.uploads = std::make_unique<UploadService>(ctx, *p.trust);

    // Threads last: the monitor first, so that it is told to stop (and
    // unblocks the consumers) no later than they are.
    p.spawned = true;
    aurora_status st = host->spawn(ctx.self, "ingest-monitor", monitor_main, &ctx);
    for (size_t i = 0; st == AURORA_OK && i < p.consumers.size(); ++i) {
        std::string name = "ingest-" + std::to_string(i);
        st = host->spawn(ctx.self, name.c_str(), consumer_main, p.consumers[i].get());
    }
    if (st == AURORA_OK && p.history) st = p.history->start();
    if (st == AURORA_OK && p.uploads) st = p.uploads->start();
    if (st == AURORA_OK && p.trust) st = p.trust->start();
    if (st != AURORA_OK) {
        ctx.log(AURORA_LOG_ERROR, "cannot start the plugin threads (status %d)", static_cast<int>(st));
        return st;
    }
    const std::string streams = ctx.shards ? ctx.s.stream + ":{0.." + std::to_string(ctx.shards - 1) + "}" : ctx.s.stream;
    ctx.log(AURORA_LOG_INFO, "consuming %s as group %s, consumers %s-0..%d, batch %d, into %s.%s; history %s",
            streams.c_str(), ctx.s.group.c_str(), ctx.consumer_prefix.c_str(), static_cast<int>(p.consumers.size()) - 1, ctx.s.batch,
            ctx.mongo->database().c_str(), ctx.s.collection.c_str(), ctx.s.history ? "on" : "off");
    return AURORA_OK;
}

aurora_status ingest_init(const aurora_host_api *host, aurora_plugin_ctx *self, void **state) {
    std::unique_ptr<IngestPlugin> p;
    try {
        p = std::make_unique<IngestPlugin>();
        p->ctx.host = host;
        p->ctx.self = self;
        aurora_status st = init_plugin(*p);
        if (st != AURORA_OK) {
            // Threads already started are joined by the host after we
            // return: their state must outlive this call (the host exits).
            // The driver must not log as this plugin once its context is gone.
            // Before any thread, everything is freed here.
            if (p->spawned) {
                for (auto *pool : {p->ctx.mongo.get(), p->ctx.probe.get()})
                    if (pool) pool->detach_log();
                (void)p.release();
            }
            return st;
        }
        *state = p.release();  // owned by the host until ingest_shutdown
        return AURORA_OK;
    } catch (const std::exception &e) {
        host->log_msg(self, AURORA_LOG_ERROR, "init failed: %s", e.what());
        if (p && p->spawned) (void)p.release();  // started threads hold it until the host joins them
        return AURORA_ERR;
    }
}

void ingest_shutdown(void *state) { std::unique_ptr<IngestPlugin> p(static_cast<IngestPlugin *>(state)); }

aurora_verdict ingest_on_message(void *state, aurora_conn *conn, aurora_msg *msg) {
    auto *p = static_cast<IngestPlugin *>(state);
    if (!p->history) return AURORA_CONTINUE;
    try {
        return p->history->on_message(conn, msg);
    } catch (const std::exception &e) {  // nothing escapes a hook
        p->ctx.log(AURORA_LOG_ERROR, "on_message: %s", e.what());
        p->ctx.host->msg_reply_error(msg, "internal", "internal error");
        return AURORA_REPLY;
    }
}

int32_t ingest_is_ready(void *state) { return static_cast<IngestPlugin *>(state)->ctx.ready() ? 1 : 0; }

aurora_plugin make_descriptor() {
    aurora_plugin d = plugin::describe(
        "ingest", "1.0.0", "Redis stream consumer group -> MongoDB batches (exactly-once effect), dead letters, history");
    d.init = ingest_init;
    d.shutdown = ingest_shutdown;
    d.on_message = ingest_on_message;
    d.is_ready = ingest_is_ready;
    return d;
}

const aurora_plugin kDescriptor = make_descriptor();

}  // namespace
}  // namespace aurora::ingest

extern "C" AURORA_EXPORT const aurora_plugin *aurora_plugin_entry(void) { return &aurora::ingest::kDescriptor; }
