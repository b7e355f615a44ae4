#include "message_changes.h"

#include <mongoc/mongoc.h>

#include <map>

#include "message_document.h"

namespace aurora::ingest {

namespace {

using plugin::bson_string;

}  // namespace

std::optional<bool> ChangeWriter::fold_onto(const std::string &room, const std::string &target,
                                            std::string &error) const {
    auto client = pool_.acquire();
    plugin::Collection changes(mongoc_client_get_collection(client.get(), pool_.database().c_str(), changes_.c_str()));
    plugin::Bson filter(BCON_NEW("roomId", BCON_UTF8(room.c_str()), "targetId", BCON_UTF8(target.c_str())));
    plugin::Bson opts(BCON_NEW("projection", "{", "_id", BCON_INT32(0), "key", BCON_INT32(1), "kind", BCON_INT32(1),
                               "userId", BCON_INT32(1), "text", BCON_INT32(1), "emoji", BCON_INT32(1), "op",
                               BCON_INT32(1), "createdAt", BCON_INT32(1), "}"));
    plugin::Cursor cursor(mongoc_collection_find_with_opts(changes.get(), filter.get(), opts.get(), nullptr));
    std::vector<ChangeRecord> records;
    const bson_t *doc = nullptr;
    while (mongoc_cursor_next(cursor.get(), &doc)) {
        ChangeRecord c{bson_string(doc, "key"), bson_string(doc, "kind"), plugin::bson_id_string(doc, "userId"), bson_string(doc, "text"),
                       bson_string(doc, "emoji"), bson_string(doc, "op"), 0};
        bson_iter_t it;
        if (bson_iter_init_find(&it, doc, "createdAt") && BSON_ITER_HOLDS_DATE_TIME(&it)) c.at_ms = bson_iter_date_time(&it);
        records.push_back(std::move(c));
    }
    bson_error_t err;
    if (mongoc_cursor_error(cursor.get(), &err)) {
        error = std::string("find changes: ") + err.message;
        return std::nullopt;
    }
    if (records.empty()) return true;  // nothing to fold (cannot happen: the caller stored one)
    const int64_t count = static_cast<int64_t>(records.size());
    MessageState st = fold_changes(std::move(records));

    plugin::Bson set(bson_new());
    bson_t *s = set.get();
    BSON_APPEND_UTF8(s, "status", st.deleted ? "deleted" : st.edited ? "edited" : "sent");
    if (st.edited || st.deleted) bson_append_utf8(s, "text", 4, st.text.data(), static_cast<int>(st.text.size()));
    if (search_ && (st.edited || st.deleted)) append_tokens(s, st.text);  // a deleted message matches nothing
    if (st.edited) BSON_APPEND_DATE_TIME(s, "editedAt", st.edited_ms);
    if (st.deleted) {
        BSON_APPEND_DATE_TIME(s, "deletedAt", st.deleted_ms);
        BSON_APPEND_UTF8(s, "deletedBy", st.deleted_by.c_str());
    }
    bson_t reactions, item, users;
    BSON_APPEND_ARRAY_BEGIN(s, "reactions", &reactions);
    for (size_t i = 0; i < st.reactions.size(); ++i) {
        const std::string idx = std::to_string(i);
        BSON_APPEND_DOCUMENT_BEGIN(&reactions, idx.c_str(), &item);
        const MessageState::Reaction &r = st.reactions[i];
        bson_append_utf8(&item, "emoji", 5, r.emoji.data(), static_cast<int>(r.emoji.size()));
        BSON_APPEND_INT32(&item, "count", static_cast<int32_t>(r.users.size()));
        BSON_APPEND_ARRAY_BEGIN(&item, "userIds", &users);
        for (size_t k = 0; k < r.users.size(); ++k) BSON_APPEND_UTF8(&users, std::to_string(k).c_str(), r.users[k].c_str());
        bson_append_array_end(&item, &users);
        bson_append_document_end(&reactions, &item);
    }
    bson_append_array_end(s, &reactions);
    BSON_APPEND_UTF8(s, "changeKey", st.last_key.c_str());
    BSON_APPEND_INT64(s, "changeCount", count);
    BSON_APPEND_DATE_TIME(s, "updatedAt", st.updated_ms);

    plugin::Collection messages(
        mongoc_client_get_collection(client.get(), pool_.database().c_str(), messages_.c_str()));
    // Only over an older fold (or none): a worker that folded fewer
    // changes never overwrites one that folded more. The set of stored
    // changes only grows, so a fold is newer when its last change is, or,
    // with the same last change, when it holds more (an older change
    // stored after a later one was folded: killed workers, two workers).
    plugin::Bson where(BCON_NEW("roomId", BCON_UTF8(room.c_str()), "streamId", BCON_UTF8(target.c_str()), "$or", "[",
                                "{", "changeKey", "{", "$exists", BCON_BOOL(false), "}", "}", "{", "changeKey", "{",
                                "$lt", BCON_UTF8(st.last_key.c_str()), "}", "}", "{", "changeKey",
                                BCON_UTF8(st.last_key.c_str()), "changeCount", "{", "$lt", BCON_INT64(count), "}", "}",
                                "]"));
    plugin::Bson update(bson_new());
    BSON_APPEND_DOCUMENT(update.get(), "$set", s);
    bson_t reply;
    bool ok = mongoc_collection_update_one(messages.get(), where.get(), update.get(), nullptr, &reply, &err);
    int64_t matched = 0;
    bson_iter_t it;
    if (ok && bson_iter_init_find(&it, &reply, "matchedCount") && BSON_ITER_HOLDS_NUMBER(&it))
        matched = bson_iter_as_int64(&it);
    bson_destroy(&reply);
    if (!ok) {
        error = std::string("update message: ") + err.message;
        return std::nullopt;
    }
    if (matched > 0) return true;
    // Nothing matched: folded already by a later change, or not stored yet.
    plugin::Bson exists(BCON_NEW("roomId", BCON_UTF8(room.c_str()), "streamId", BCON_UTF8(target.c_str())));
    int64_t n = mongoc_collection_count_documents(messages.get(), exists.get(), nullptr, nullptr, nullptr, &err);
    if (n < 0) {
        error = std::string("count message: ") + err.message;
        return std::nullopt;
    }
    return n > 0;
}

ChangeWriter::Result ChangeWriter::apply(const std::vector<const bson_t *> &docs) const {
    Result out;
    out.outcomes.assign(docs.size(), Outcome::Applied);
    out.errors.assign(docs.size(), std::string());
    if (docs.empty()) return out;
    WriteResult stored = inserter_.insert(docs);
    if (stored.unavailable) {
        out.unavailable = true;
        out.error = stored.error;
        return out;
    }
    // One fold per message, however many of its changes the batch holds.
    std::map<std::pair<std::string, std::string>, std::vector<size_t>> by_message;
    for (size_t i = 0; i < docs.size(); ++i) {
        if (stored.docs[i] == WriteResult::Doc::Refused) {
            out.outcomes[i] = Outcome::Refused;
            out.errors[i] = stored.errors[i];
            continue;
        }
        by_message[{bson_string(docs[i], "roomId"), bson_string(docs[i], "targetId")}].push_back(i);
    }
    for (const auto &[message, changes] : by_message) {
        std::optional<bool> there = fold_onto(message.first, message.second, out.error);
        if (!there) {
            out.unavailable = true;
            return out;
        }
        if (!*there)
            for (size_t i : changes) out.outcomes[i] = Outcome::MessageMissing;
    }
    return out;
}

namespace {

// One non-unique index {roomId: 1, <field>: 1} (one createIndexes per
// index: see create_indexes).
bool create_room_index(plugin::MongoPool &pool, const std::string &collection, const char *field, std::string &error) {
    auto client = pool.acquire();
    plugin::Collection coll(mongoc_client_get_collection(client.get(), pool.database().c_str(), collection.c_str()));
    const std::string name = std::string("roomId_1_") + field + "_1";
    plugin::Bson cmd(BCON_NEW("createIndexes", BCON_UTF8(collection.c_str()), "indexes", "[", "{", "key", "{", "roomId",
                              BCON_INT32(1), field, BCON_INT32(1), "}", "name", BCON_UTF8(name.c_str()), "}", "]"));
    bson_t reply;
    bson_error_t err;
    bool ok = mongoc_collection_write_command_with_opts(coll.get(), cmd.get(), nullptr, &reply, &err);
    bson_destroy(&reply);
    if (!ok) error = std::string("createIndexes: ") + err.message;
    return ok;
}

}  // namespace

bool create_search_index(plugin::MongoPool &pool, const std::string &collection, std::string &error) {
    return create_room_index(pool, collection, "tokens", error);
}

bool create_change_indexes(plugin::MongoPool &pool, const std::string &collection, UniqueKey key, std::string &error) {
    IndexReport report;
    return create_indexes(pool, collection, false, key, false, report, error) &&
           create_room_index(pool, collection, "targetId", error);
}

}  // namespace aurora::ingest
