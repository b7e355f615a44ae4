#include "retention.h"

#include <mongoc/mongoc.h>

#include <algorithm>

namespace aurora::ingest {

namespace {

std::string_view text(const redisReply *r) {
    return r && r->type == REDIS_REPLY_STRING ? std::string_view(r->str, r->len) : std::string_view();
}

// A field of an XINFO GROUPS entry (RESP2: a flat field/value array).
const redisReply *field(const redisReply *entry, std::string_view name) {
    if (!entry || entry->type != REDIS_REPLY_ARRAY) return nullptr;
    for (size_t i = 0; i + 1 < entry->elements; i += 2)
        if (text(entry->element[i]) == name) return entry->element[i + 1];
    return nullptr;
}

}  // namespace

std::optional<StreamId> safe_trim_point(const std::vector<GroupPosition> &groups, StreamId keep_cutoff) {
    if (groups.empty()) return std::nullopt;
    StreamId point = keep_cutoff;
    for (const GroupPosition &g : groups) {
        // Everything up to last_delivered was delivered; what is not
        // acknowledged of it is pending, and the oldest of that is needed.
        StreamId needed = g.oldest_pending ? *g.oldest_pending : StreamId{g.last_delivered.ms, g.last_delivered.seq + 1};
        point = std::min(point, needed);
    }
    return point;
}

bool trim_stream(IngestContext &ctx, plugin::RedisConnection &redis, int shard, std::string &error) {
    const std::string stream = ctx.stream(shard);
    if (!redis.ensure(error)) return false;
    plugin::RedisReply info = redis.command({"XINFO", "GROUPS", stream}, error);
    if (!info) return false;
    if (info->type == REDIS_REPLY_ERROR) return true;  // no stream yet
    std::vector<GroupPosition> groups;
    for (size_t i = 0; info->type == REDIS_REPLY_ARRAY && i < info->elements; ++i) {
        const redisReply *g = info->element[i];
        std::optional<StreamId> last = StreamId::parse(text(field(g, "last-delivered-id")));
        const redisReply *name = field(g, "name");
        const redisReply *pending = field(g, "pending");
        if (!last || !name) return true;  // a reply we do not understand: trim nothing
        GroupPosition pos{*last, std::nullopt};
        if (pending && pending->type == REDIS_REPLY_INTEGER && pending->integer > 0) {
            plugin::RedisReply summary = redis.command({"XPENDING", stream, std::string(text(name))}, error);
            if (!summary) return false;
            if (summary->type != REDIS_REPLY_ARRAY || summary->elements < 2) return true;
            pos.oldest_pending = StreamId::parse(text(summary->element[1]));
            if (!pos.oldest_pending) return true;
        }
        groups.push_back(pos);
    }
    const uint64_t now = ctx.host->now_wall_ms();
    const uint64_t keep_ms = static_cast<uint64_t>(ctx.s.stream_keep_s) * 1000;
    std::optional<StreamId> point = safe_trim_point(groups, StreamId{now > keep_ms ? now - keep_ms : 0, 0});
    if (!point) {
        ctx.host->metric_add(ctx.m.trim_passes, 1);  // a pass that found nothing it may trim
        return true;
    }
    plugin::RedisReply r = redis.command({"XTRIM", stream, "MINID", point->str()}, error);
    if (!r) return false;
    ctx.host->metric_add(ctx.m.trim_passes, 1);
    if (r->type == REDIS_REPLY_INTEGER && r->integer > 0) ctx.host->metric_add(ctx.m.trimmed, static_cast<double>(r->integer));
    return true;
}

namespace {

// deleteMany(filter) on `collection`; the count deleted, or nullopt.
std::optional<int64_t> delete_many(IngestContext &ctx, mongoc_client_t *client, const std::string &collection,
                                   const bson_t *filter, std::string &error) {
    plugin::Collection coll(mongoc_client_get_collection(client, ctx.mongo->database().c_str(), collection.c_str()));
    bson_t reply;
    bson_error_t err;
    bool ok = mongoc_collection_delete_many(coll.get(), filter, nullptr, &reply, &err);
    int64_t n = 0;
    bson_iter_t it;
    if (ok && bson_iter_init_find(&it, &reply, "deletedCount") && BSON_ITER_HOLDS_NUMBER(&it)) n = bson_iter_as_int64(&it);
    bson_destroy(&reply);
    if (!ok) {
        error = "deleteMany " + collection + ": " + err.message;
        return std::nullopt;
    }
    return n;
}

}  // namespace

bool expire_messages(IngestContext &ctx, std::string &error) {
    const int64_t now = static_cast<int64_t>(ctx.host->now_wall_ms());
    auto client = ctx.mongo->acquire();
    int64_t deleted = 0;
    // Messages by their time; changes by their message's (targetAt), so
    // that a message's changes go with it.
    auto expire = [&](const std::string *room, int64_t secs, bool not_listed) {
        for (const std::string *coll : {&ctx.s.collection, &ctx.s.changes_collection}) {
            const char *field = coll == &ctx.s.collection ? "createdAt" : "targetAt";
            plugin::Bson filter(BCON_NEW(field, "{", "$lt", BCON_DATE_TIME(now - secs * 1000), "}"));
            if (room) BSON_APPEND_UTF8(filter.get(), "roomId", room->c_str());
            if (not_listed) {  // rooms with their own time are not the global one's
                bson_t in_room, nin;
                BSON_APPEND_DOCUMENT_BEGIN(filter.get(), "roomId", &in_room);
                BSON_APPEND_ARRAY_BEGIN(&in_room, "$nin", &nin);
                int i = 0;
                for (const auto &entry : ctx.s.room_retention_s) {
                    const std::string key = std::to_string(i++);
                    BSON_APPEND_UTF8(&nin, key.c_str(), entry.first.c_str());
                }
                bson_append_array_end(&in_room, &nin);
                bson_append_document_end(filter.get(), &in_room);
            }
            std::optional<int64_t> n = delete_many(ctx, client.get(), *coll, filter.get(), error);
            if (!n) return false;
            if (coll == &ctx.s.collection) deleted += *n;
        }
        return true;
    };
    for (const auto &[room, secs] : ctx.s.room_retention_s) {
        if (secs > 0 && !expire(&room, secs, false)) return false;  // 0: kept
    }
    if (ctx.s.retention_s > 0 && !expire(nullptr, ctx.s.retention_s, !ctx.s.room_retention_s.empty())) return false;
    if (deleted > 0) {
        ctx.host->metric_add(ctx.m.expired, static_cast<double>(deleted));
        ctx.log(AURORA_LOG_INFO, "retention: deleted %lld expired message(s)", static_cast<long long>(deleted));
    }
    return true;
}

}  // namespace aurora::ingest
