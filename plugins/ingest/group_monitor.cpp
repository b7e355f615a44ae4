#include "group_monitor.h"

#include <chrono>
#include <string_view>
#include <thread>
#include <vector>

#include "message_writer.h"

namespace aurora::ingest {

namespace {

using Clock = std::chrono::steady_clock;

// XINFO GROUPS: a flat [key, value, ...] map per group.
void export_group_stats(IngestContext &ctx, plugin::RedisConnection &redis) {
    std::string err;
    if (!redis.ensure(err)) return;
    redis.append({"XINFO", "GROUPS", ctx.s.stream});
    redis.append({"XLEN", ctx.s.dead_letter_stream});
    plugin::RedisReply groups = redis.read(err);
    plugin::RedisReply dead = groups ? redis.read(err) : nullptr;
    if (!groups || !dead) return;
    if (dead->type == REDIS_REPLY_INTEGER) ctx.host->metric_set(ctx.m.dead_letter_length, static_cast<double>(dead->integer));
    if (groups->type != REDIS_REPLY_ARRAY) return;
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
        if (pending >= 0) ctx.host->metric_set(ctx.m.pending, static_cast<double>(pending));
        if (lag >= 0) ctx.host->metric_set(ctx.m.lag, static_cast<double>(lag));
    }
}

// At shutdown: wake consumers blocked in XREADGROUP, until they have all
// left (bounded: a consumer that is inserting finishes its batch first).
void unblock_consumers(IngestContext &ctx, plugin::RedisConnection &redis) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(ctx.s.redis_timeout_ms + 1000);
    while (Clock::now() < deadline) {
        std::vector<long long> ids;
        {
            std::lock_guard lock(ctx.mu);
            for (const auto &[index, id] : ctx.consumer_clients) ids.push_back(id);
        }
        if (ids.empty()) return;
        std::string err;
        if (redis.ensure(err)) {
            for (long long id : ids) redis.append({"CLIENT", "UNBLOCK", std::to_string(id)});
            for (size_t n = redis.pending(); n > 0; --n) redis.read(err);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

}  // namespace

void run_group_monitor(IngestContext &ctx, aurora_worker *w) {
    const aurora_host_api *host = ctx.host;
    plugin::RedisConnection redis(ctx.redis_url, std::chrono::milliseconds(ctx.s.redis_timeout_ms));
    bool index_warned = false;
    do {
        std::string err;
        if (!ctx.indexes_ready.load()) {
            if (create_indexes(*ctx.mongo, ctx.s.collection, ctx.s.secondary_indexes, err)) {
                ctx.indexes_ready.store(true);
                ctx.set_mongo(true);
                ctx.log(AURORA_LOG_INFO, "indexes of %s.%s ready", ctx.mongo->database().c_str(), ctx.s.collection.c_str());
            } else {
                if (!index_warned) ctx.log(AURORA_LOG_WARN, "cannot create the indexes yet: %s", err.c_str());
                index_warned = true;
                ctx.set_mongo(false, err);
            }
        } else if (ping(*ctx.mongo, err)) {
            ctx.set_mongo(true);
        } else {
            ctx.set_mongo(false, err);
        }
        if (ctx.s.workers > 0) export_group_stats(ctx, redis);
    } while (!host->worker_wait(w, static_cast<uint32_t>(ctx.s.stats_interval_ms)));
    unblock_consumers(ctx, redis);
}

}  // namespace aurora::ingest
