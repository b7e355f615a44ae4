#include "history_reader.h"

#include <mongoc/mongoc.h>

#include <algorithm>

#include "json.h"

namespace aurora::ingest {

namespace {

bool read_message(const bson_t *doc, HistoryMessage &m) {
    bson_iter_t it;
    auto utf8 = [&](const char *key, std::string &out) {
        if (!bson_iter_init_find(&it, doc, key) || !BSON_ITER_HOLDS_UTF8(&it)) return false;
        uint32_t len = 0;
        const char *s = bson_iter_utf8(&it, &len);
        out.assign(s, len);
        return true;
    };
    if (!utf8("streamId", m.id) || !utf8("roomId", m.room)) return false;
    auto sid = StreamId::parse(m.id);
    if (!sid) return false;
    m.sid = *sid;
    utf8("username", m.user);
    utf8("text", m.text);
    std::string status;
    utf8("status", status);
    m.edited = status == "edited";
    m.deleted = status == "deleted";
    if (m.edited && bson_iter_init_find(&it, doc, "editedAt") && BSON_ITER_HOLDS_DATE_TIME(&it))
        m.edited_ms = bson_iter_date_time(&it);
    bson_iter_t arr, item, users;
    if (!m.deleted && bson_iter_init_find(&it, doc, "reactions") && BSON_ITER_HOLDS_ARRAY(&it) &&
        bson_iter_recurse(&it, &arr)) {
        while (bson_iter_next(&arr)) {
            if (!BSON_ITER_HOLDS_DOCUMENT(&arr) || !bson_iter_recurse(&arr, &item)) continue;
            HistoryMessage::Reaction r;
            while (bson_iter_next(&item)) {
                std::string_view key = bson_iter_key(&item);
                if (key == "emoji" && BSON_ITER_HOLDS_UTF8(&item)) {
                    r.emoji = bson_iter_utf8(&item, nullptr);
                } else if (key == "userIds" && BSON_ITER_HOLDS_ARRAY(&item) && bson_iter_recurse(&item, &users)) {
                    while (bson_iter_next(&users))
                        if (BSON_ITER_HOLDS_UTF8(&users)) r.user_ids.emplace_back(bson_iter_utf8(&users, nullptr));
                }
            }
            if (!r.emoji.empty() && !r.user_ids.empty()) m.reactions.push_back(std::move(r));
        }
    }
    if (!m.deleted && bson_iter_init_find(&it, doc, "attachments") && BSON_ITER_HOLDS_ARRAY(&it) &&
        bson_iter_recurse(&it, &arr)) {
        while (bson_iter_next(&arr)) {
            if (!BSON_ITER_HOLDS_DOCUMENT(&arr)) continue;
            uint32_t len = 0;
            const uint8_t *data = nullptr;
            bson_iter_document(&arr, &len, &data);
            bson_t one;
            if (!bson_init_static(&one, data, len)) continue;
            HistoryMessage::Attachment a{plugin::bson_string(&one, "id"), plugin::bson_string(&one, "url"),
                                         plugin::bson_string(&one, "fileType"), plugin::bson_string(&one, "filename")};
            if (bson_iter_init_find(&item, &one, "size") && BSON_ITER_HOLDS_NUMBER(&item)) a.size = bson_iter_as_int64(&item);
            if (!a.url.empty()) m.attachments.push_back(std::move(a));
        }
    }
    m.user_id = plugin::bson_id_string(doc, "userId");
    return true;
}

// find(filter) sorted by createdAt descending (the index order), at most
// `limit` documents (0: no limit).
bool find(mongoc_collection_t *coll, const bson_t *filter, int64_t limit, std::vector<HistoryMessage> &out,
          std::string &error) {
    bson_t *opts = BCON_NEW("sort", "{", "createdAt", BCON_INT32(-1), "}", "projection", "{", "streamId",
                            BCON_INT32(1), "roomId", BCON_INT32(1), "username", BCON_INT32(1), "userId",
                            BCON_INT32(1), "text", BCON_INT32(1), "status", BCON_INT32(1), "editedAt",
                            BCON_INT32(1), "reactions", BCON_INT32(1), "attachments", BCON_INT32(1), "}");
    plugin::Bson opts_guard(opts);
    if (limit > 0) BSON_APPEND_INT64(opts, "limit", limit);
    plugin::Cursor cursor(mongoc_collection_find_with_opts(coll, filter, opts, nullptr));
    const bson_t *doc;
    while (mongoc_cursor_next(cursor.get(), &doc)) {
        HistoryMessage m;
        if (read_message(doc, m)) out.push_back(std::move(m));
    }
    bson_error_t err;
    if (mongoc_cursor_error(cursor.get(), &err)) {
        error = err.message;
        return false;
    }
    return true;
}

bool newer(const HistoryMessage &a, const HistoryMessage &b) { return a.sid > b.sid; }

}  // namespace

bool read_history(plugin::MongoPool &pool, const std::string &collection, const std::string &room,
                  std::optional<StreamId> before, size_t limit, HistoryPage &page, std::string &error,
                  const bson_t *extra) {
    auto with_extra = [extra](plugin::Bson filter) {
        if (extra) bson_concat(filter.get(), extra);
        return filter;
    };
    auto client = pool.acquire();
    plugin::Collection coll(mongoc_client_get_collection(client.get(), pool.database().c_str(), collection.c_str()));
    std::vector<HistoryMessage> rows;

    // 1. The cursor's own millisecond: every message of it, then the older ones.
    if (before) {
        plugin::Bson same = with_extra(plugin::Bson(BCON_NEW("roomId", BCON_UTF8(room.c_str()), "createdAt",
                                   BCON_DATE_TIME(static_cast<int64_t>(before->ms)))));
        std::vector<HistoryMessage> at;
        if (!find(coll.get(), same.get(), 0, at, error)) return false;
        for (HistoryMessage &m : at)
            if (m.sid < *before) rows.push_back(std::move(m));
    }
    if (rows.size() < limit) {
        // 2. Older milliseconds, newest first, as many as still fit.
        const int64_t want = static_cast<int64_t>(limit - rows.size());
        plugin::Bson older = with_extra(plugin::Bson(before ? BCON_NEW("roomId", BCON_UTF8(room.c_str()), "createdAt", "{", "$lt",
                                             BCON_DATE_TIME(static_cast<int64_t>(before->ms)), "}")
                                  : BCON_NEW("roomId", BCON_UTF8(room.c_str()))));
        std::vector<HistoryMessage> more;
        if (!find(coll.get(), older.get(), want, more, error)) return false;
        if (static_cast<int64_t>(more.size()) == want && !more.empty()) {
            // 3. The last millisecond may have been cut anywhere: read all of it.
            uint64_t last_ms = more.front().sid.ms;
            for (const HistoryMessage &m : more) last_ms = std::min(last_ms, m.sid.ms);
            std::erase_if(more, [&](const HistoryMessage &m) { return m.sid.ms == last_ms; });
            plugin::Bson edge = with_extra(plugin::Bson(BCON_NEW("roomId", BCON_UTF8(room.c_str()), "createdAt",
                                       BCON_DATE_TIME(static_cast<int64_t>(last_ms)))));
            if (!find(coll.get(), edge.get(), 0, more, error)) return false;
        }
        for (HistoryMessage &m : more) rows.push_back(std::move(m));
    }
    std::sort(rows.begin(), rows.end(), newer);
    if (rows.size() > limit) rows.resize(limit);
    page.next_before.reset();
    if (rows.size() == limit && limit > 0) page.next_before = rows.back().id;
    page.messages = std::move(rows);
    return true;
}

std::string messages_json(const std::vector<HistoryMessage> &messages) {
    plugin::Json arr(cJSON_CreateArray());
    for (const HistoryMessage &m : messages) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "type", "message");
        cJSON_AddStringToObject(o, "id", m.id.c_str());
        cJSON_AddStringToObject(o, "room", m.room.c_str());
        cJSON_AddStringToObject(o, "user", m.user.c_str());
        cJSON_AddStringToObject(o, "userId", m.user_id.c_str());
        cJSON_AddStringToObject(o, "text", m.text.c_str());
        if (!m.attachments.empty()) {
            cJSON *as = cJSON_AddArrayToObject(o, "attachments");
            for (const HistoryMessage::Attachment &a : m.attachments) {
                cJSON *ao = cJSON_CreateObject();
                cJSON_AddStringToObject(ao, "id", a.id.c_str());
                cJSON_AddStringToObject(ao, "url", a.url.c_str());
                cJSON_AddStringToObject(ao, "fileType", a.type.c_str());
                cJSON_AddNumberToObject(ao, "size", static_cast<double>(a.size));
                cJSON_AddStringToObject(ao, "filename", a.filename.c_str());
                cJSON_AddItemToArray(as, ao);
            }
        }
        cJSON_AddNumberToObject(o, "ts", static_cast<double>(m.sid.ms));
        if (m.edited) {
            cJSON_AddTrueToObject(o, "edited");
            cJSON_AddNumberToObject(o, "editedAt", static_cast<double>(m.edited_ms));
        }
        if (m.deleted) cJSON_AddTrueToObject(o, "deleted");
        if (!m.reactions.empty()) {
            cJSON *rs = cJSON_AddArrayToObject(o, "reactions");
            for (const HistoryMessage::Reaction &r : m.reactions) {
                cJSON *ro = cJSON_CreateObject();
                cJSON_AddStringToObject(ro, "emoji", r.emoji.c_str());
                cJSON_AddNumberToObject(ro, "count", static_cast<double>(r.user_ids.size()));
                cJSON *ids = cJSON_AddArrayToObject(ro, "userIds");
                for (const std::string &u : r.user_ids) cJSON_AddItemToArray(ids, cJSON_CreateString(u.c_str()));
                cJSON_AddItemToArray(rs, ro);
            }
        }
        cJSON_AddItemToArray(arr.get(), o);
    }
    return plugin::to_string(arr.get());
}

namespace {

// One document of `coll` matching `filter` (nullopt: MongoDB failed).
std::optional<bool> find_one(mongoc_client_t *client, const std::string &db, const char *coll, const bson_t *filter,
                             std::string *type, std::string &error) {
    plugin::Collection c(mongoc_client_get_collection(client, db.c_str(), coll));
    plugin::Bson opts(BCON_NEW("limit", BCON_INT64(1)));
    plugin::Cursor cursor(mongoc_collection_find_with_opts(c.get(), filter, opts.get(), nullptr));
    const bson_t *doc = nullptr;
    bool found = mongoc_cursor_next(cursor.get(), &doc);
    if (found && type) {
        bson_iter_t it;
        if (bson_iter_init_find(&it, doc, "type") && BSON_ITER_HOLDS_UTF8(&it)) *type = bson_iter_utf8(&it, nullptr);
    }
    bson_error_t err;
    if (mongoc_cursor_error(cursor.get(), &err)) {
        error = std::string("mongo find ") + coll + ": " + err.message;
        return std::nullopt;
    }
    return found;
}

}  // namespace

std::optional<bool> may_read_room(plugin::MongoPool &pool, const std::string &room, const std::string &user,
                                  std::string &error) {
    auto client = pool.acquire();
    if (!client) {
        error = "mongo: no client";
        return std::nullopt;
    }
    std::string type;
    plugin::Bson by_id(BCON_NEW("_id", BCON_UTF8(room.c_str())));
    std::optional<bool> registered = find_one(client.get(), pool.database(), "rooms", by_id.get(), &type, error);
    if (!registered) return std::nullopt;
    if (!*registered || type == "public") return true;
    plugin::Bson member(BCON_NEW("roomId", BCON_UTF8(room.c_str()), "userId", BCON_UTF8(user.c_str())));
    return find_one(client.get(), pool.database(), "room_members", member.get(), nullptr, error);
}

}  // namespace aurora::ingest
