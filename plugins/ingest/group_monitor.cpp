#include "group_monitor.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <string_view>
#include <thread>
#include <vector>

#include "cluster_slots.h"
#include "message_writer.h"
#include "message_changes.h"
#include "retention.h"

namespace aurora::ingest {

namespace {

using Clock = std::chrono::steady_clock;

struct GroupStats {
    long long pending = 0, lag = 0, dead = 0;
    bool lag_known = true;
};

// One stream's group (XINFO GROUPS: a flat [key, value, ...] map per group)
// and dead-letter stream, added to `sum`. False if Redis did not answer.
bool add_group_stats(IngestContext &ctx, plugin::RedisConnection &redis, int shard, GroupStats &sum) {
    std::string err;
    if (!redis.ensure(err)) return false;
    redis.append({"XINFO", "GROUPS", ctx.stream(shard)});
    redis.append({"XLEN", ctx.dead_letter_stream(shard)});
    plugin::RedisReply groups = redis.read(err);
    plugin::RedisReply dead = groups ? redis.read(err) : nullptr;
    if (!groups || !dead) return false;
    if (dead->type == REDIS_REPLY_INTEGER) sum.dead += dead->integer;
    if (groups->type != REDIS_REPLY_ARRAY) return true;  // no stream yet
    for (size_t g = 0; g < groups->elements; ++g) {
        const redisReply *m = groups->element[g];
        if (m->type != REDIS_REPLY_ARRAY) continue;
        bool ours = false;
        long long pending = -1, lag = -1;
        for (size_t i = 0; i + 1 < m->elements; i += 2) {
            const redisReply *k = m->element[i], *v = m->element[i + 1];
            if (k->type != REDIS_REPLY_STRING) continue;
            std::string_view key(k->str, k->len);
            if (key == "name" && v->type == REDIS_REPLY_STRING) ours = std::string_view(v->str, v->len) == ctx.s.group;
            else if (key == "pending" && v->type == REDIS_REPLY_INTEGER) pending = v->integer;
            else if (key == "lag" && v->type == REDIS_REPLY_INTEGER) lag = v->integer;  // nil when Redis cannot tell
        }
        if (!ours) continue;
        if (pending >= 0) sum.pending += pending;
        if (lag >= 0) sum.lag += lag;
        else sum.lag_known = false;
    }
    return true;
}

// Summed over the shards' streams in cluster mode.
void export_group_stats(IngestContext &ctx, std::vector<std::unique_ptr<plugin::RedisConnection>> &redis) {
    GroupStats sum;
    for (size_t i = 0; i < redis.size(); ++i)
        if (!add_group_stats(ctx, *redis[i], static_cast<int>(i), sum)) return;
    ctx.host->metric_set(ctx.m.dead_letter_length, static_cast<double>(sum.dead));
    ctx.host->metric_set(ctx.m.pending, static_cast<double>(sum.pending));
    if (sum.lag_known) ctx.host->metric_set(ctx.m.lag, static_cast<double>(sum.lag));
}

// Deletes the group's consumers that have nothing pending and have been
// idle longer than consumer_reap_idle_ms: processes that are gone (each
// restart used to leave one behind). In one script, so that a consumer
// cannot read an entry between the check and the delete (its pending
// entries would go with it). A live consumer is idle at most block_ms +
// redis_timeout_ms on Redis 7.2 and later (settings check the threshold
// exceeds that). Before 7.2 idle counts from the last delivery, so another
// live process's consumer on a quiet stream can be deleted: harmless, it has
// nothing pending and its next XREADGROUP that gets entries creates it
// again. This process's own consumers (ARGV[3], the name prefix) are kept.
constexpr const char *kReapScript = R"lua(
local n = 0
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if f['pending'] == 0 and f['idle'] > tonumber(ARGV[2]) and string.sub(f['name'], 1, #ARGV[3]) ~= ARGV[3] then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])
    n = n + 1
  end
end
return n
)lua";

void reap_consumers(IngestContext &ctx, plugin::RedisConnection &redis, int shard) {
    std::string err;
    if (!redis.ensure(err)) return;
    plugin::RedisReply r = redis.command(
        {"EVAL", kReapScript, "1", ctx.stream(shard), ctx.s.group, std::to_string(ctx.s.consumer_reap_idle_ms),
         ctx.consumer_prefix + "-"},
        err);
    if (!r) return;
    if (r->type == REDIS_REPLY_INTEGER && r->integer > 0) {
        ctx.host->metric_add(ctx.m.reaped, static_cast<double>(r->integer));
        ctx.log(AURORA_LOG_INFO, "deleted %lld consumer(s) of group %s on %s: nothing pending, idle more than %lld ms",
                r->integer, ctx.s.group.c_str(), ctx.stream(shard).c_str(),
                static_cast<long long>(ctx.s.consumer_reap_idle_ms));
    } else if (std::string_view e = r->type == REDIS_REPLY_ERROR ? std::string_view(r->str, r->len) : "";
               !e.empty() && e.find("NOGROUP") == e.npos && e.find("no such key") == e.npos) {
        // (No stream or group yet, as after Redis restarted empty: the consumers create them.)
        ctx.log(AURORA_LOG_WARN, "reaping idle consumers: %.*s", static_cast<int>(r->len), r->str);
    }
}

// At shutdown: wake consumers blocked in XREADGROUP, until they have all
// left (bounded: a consumer that is inserting finishes its batch first).
// Each CLIENT UNBLOCK goes to the server the consumer is connected to.
void unblock_consumers(IngestContext &ctx) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(ctx.s.redis_timeout_ms + 1000);
    std::map<std::pair<std::string, int>, std::unique_ptr<plugin::RedisConnection>> servers;
    while (Clock::now() < deadline) {
        std::vector<IngestContext::ConsumerClient> clients;
        {
            std::lock_guard lock(ctx.mu);
            for (const auto &[index, c] : ctx.consumer_clients) clients.push_back(c);
        }
        if (clients.empty()) return;
        std::string err;
        for (const auto &c : clients) {
            auto &conn = servers[{c.server.host, c.server.port}];
            if (!conn) {
                plugin::RedisUrl u = ctx.redis_url;
                u.sentinels.clear();  // that very server, whatever the mode
                u.nodes.clear();
                u.host = c.server.host;
                u.port = c.server.port;
                conn = std::make_unique<plugin::RedisConnection>(u, std::chrono::milliseconds(ctx.s.redis_timeout_ms));
            }
            if (conn->ensure(err)) conn->append({"CLIENT", "UNBLOCK", std::to_string(c.id)});
        }
        for (auto &[at, conn] : servers)
            for (size_t n = conn->pending(); n > 0; --n) conn->read(err);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

}  // namespace

void run_group_monitor(IngestContext &ctx, aurora_worker *w) {
    const aurora_host_api *host = ctx.host;
    // One connection per stream: each to its shard's master in cluster mode.
    std::vector<std::unique_ptr<plugin::RedisConnection>> redis;
    for (int i = 0; i < std::max(ctx.shards, 1); ++i) {
        plugin::RedisUrl u = ctx.redis_url;
        if (ctx.shards) u.slot = plugin::key_slot(ctx.stream(i));
        redis.push_back(std::make_unique<plugin::RedisConnection>(u, std::chrono::milliseconds(ctx.s.redis_timeout_ms)));
    }
    bool index_warned = false;
    Clock::time_point next_expiry = Clock::now();
    do {
        std::string err;
        if (!ctx.indexes_ready.load()) {
            IndexReport report;
            if (create_indexes(*ctx.mongo, ctx.s.collection, ctx.s.secondary_indexes, ctx.unique_key, ctx.shards > 0,
                               report, err) &&
                create_change_indexes(*ctx.mongo, ctx.s.changes_collection, ctx.unique_key, err) &&
                (!ctx.s.search || create_search_index(*ctx.mongo, ctx.s.collection, err))) {
                ctx.indexes_ready.store(true);
                ctx.set_mongo(true);
                ctx.log(AURORA_LOG_INFO, "indexes of %s.%s ready", ctx.mongo->database().c_str(), ctx.s.collection.c_str());
                if (report.stream_index_left)
                    ctx.log(AURORA_LOG_INFO,
                            "the unique index streamId_1 is still there beside roomId_1_streamId_1; it is harmless "
                            "with one stream, but drop it before sharding the collection (docs/ingest.md)");
            } else {
                if (!index_warned) ctx.log(AURORA_LOG_WARN, "cannot create the indexes yet: %s", err.c_str());
                index_warned = true;
                ctx.set_mongo(false, err);
            }
        } else if (ping(*ctx.probe, err)) {
            ctx.set_mongo(true);
        } else {
            ctx.set_mongo(false, err);
        }
        if (ctx.s.stream_keep_s > 0) {
            for (size_t i = 0; i < redis.size(); ++i)
                if (!trim_stream(ctx, *redis[i], static_cast<int>(i), err))
                    ctx.log(AURORA_LOG_WARN, "trimming %s: %s", ctx.stream(static_cast<int>(i)).c_str(), err.c_str());
        }
        if ((ctx.s.retention_s > 0 || !ctx.s.room_retention_s.empty()) && ctx.indexes_ready.load() &&
            Clock::now() >= next_expiry) {
            next_expiry = Clock::now() + std::chrono::seconds(ctx.s.retention_interval_s);
            if (!expire_messages(ctx, err)) ctx.log(AURORA_LOG_WARN, "retention: %s", err.c_str());
        }
        if (ctx.s.workers > 0) {
            export_group_stats(ctx, redis);
            if (ctx.s.consumer_reap_idle_ms > 0)
                for (size_t i = 0; i < redis.size(); ++i) reap_consumers(ctx, *redis[i], static_cast<int>(i));
        }
    } while (!host->worker_wait(w, static_cast<uint32_t>(ctx.s.stats_interval_ms)));
    unblock_consumers(ctx);
}

}  // namespace aurora::ingest
