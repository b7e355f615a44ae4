#include "room_store.h"

#include "stream_id.h"

#include <algorithm>
#include <cstdlib>
#include <map>

namespace aurora::rooms {

using plugin::Bson;
using plugin::Collection;
using plugin::Cursor;
using plugin::RedisConnection;
using plugin::RedisReply;

namespace {

constexpr uint32_t kDuplicateKey = 11000;
constexpr const char *kRooms = "rooms";
constexpr const char *kMembers = "room_members";

std::string utf8_field(const bson_t *doc, const char *key) { return plugin::bson_string(doc, key); }

bool bool_field(const bson_t *doc, const char *key) {
    bson_iter_t it;
    return bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_BOOL(&it) && bson_iter_bool(&it);
}

RoomInfo room_of(const bson_t *doc) {
    RoomInfo info;
    info.id = utf8_field(doc, "_id");
    info.registered = true;
    info.type = parse_type(utf8_field(doc, "type")).value_or(RoomType::Private);  // unknown: the safe side
    info.title = utf8_field(doc, "title");
    info.topic = utf8_field(doc, "topic");
    info.owner = utf8_field(doc, "createdBy");
    info.archived = bool_field(doc, "archived");
    info.ready = bool_field(doc, "ready");
    bson_iter_t it, child;
    if (bson_iter_init_find(&it, doc, "memberNames") && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &child)) {
        while (bson_iter_next(&child)) {
            if (!BSON_ITER_HOLDS_DOCUMENT(&child)) continue;
            uint32_t len = 0;
            const uint8_t *data = nullptr;
            bson_iter_document(&child, &len, &data);
            bson_t entry;
            if (!bson_init_static(&entry, data, len)) continue;
            std::string id = utf8_field(&entry, "userId"), name = utf8_field(&entry, "user");
            if (!id.empty() && !name.empty()) info.names.emplace_back(id, name);
        }
    }
    return info;
}

std::string mongo_error(const char *what, const bson_error_t &err) { return std::string("mongo ") + what + ": " + err.message; }

// Replies of a pipeline, read whole (a failed read leaves the connection reset).
bool read_all(RedisConnection &r, size_t n, std::string &error) {
    bool ok = true;
    for (size_t i = 0; i < n; ++i) {
        if (!r.read(error)) ok = false;
    }
    return ok;
}

}  // namespace

plugin::MongoPool::Client RoomStore::acquire(std::string &error) {
    plugin::MongoPool::Client client = pool_.acquire();
    if (!client) error = "mongo: no client";
    return client;
}

Collection RoomStore::collection(plugin::MongoPool::Client &client, const std::string &name) {
    return Collection(mongoc_client_get_collection(client.get(), pool_.database().c_str(), name.c_str()));
}

bool RoomStore::ensure_indexes(std::string &error) {
    auto client = acquire(error);
    if (!client) return false;
    std::unique_ptr<mongoc_database_t, decltype(&mongoc_database_destroy)> db(
        mongoc_client_get_database(client.get(), pool_.database().c_str()), mongoc_database_destroy);
    Bson cmd(BCON_NEW("createIndexes", BCON_UTF8(kMembers), "indexes", "[", "{", "key", "{", "roomId", BCON_INT32(1),
                      "userId", BCON_INT32(1), "}", "name", BCON_UTF8("roomId_1_userId_1"), "unique", BCON_BOOL(true),
                      "}", "{", "key", "{", "userId", BCON_INT32(1), "}", "name", BCON_UTF8("userId_1"), "}", "]"));
    bson_t reply;
    bson_error_t err;
    bool ok = mongoc_database_write_command_with_opts(db.get(), cmd.get(), nullptr, &reply, &err);
    bson_destroy(&reply);
    if (!ok) error = mongo_error("createIndexes", err);
    if (ok) indexed_.store(true);
    return ok;
}

std::optional<RoomInfo> RoomStore::load_room(const std::string &id, std::string &error) {
    auto client = acquire(error);
    if (!client) return std::nullopt;
    Collection rooms = collection(client, kRooms);
    Bson filter(BCON_NEW("_id", BCON_UTF8(id.c_str())));
    Bson opts(BCON_NEW("limit", BCON_INT64(1)));
    Cursor cursor(mongoc_collection_find_with_opts(rooms.get(), filter.get(), opts.get(), nullptr));
    const bson_t *doc = nullptr;
    RoomInfo info;
    info.id = id;
    if (mongoc_cursor_next(cursor.get(), &doc)) info = room_of(doc);
    bson_error_t err;
    if (mongoc_cursor_error(cursor.get(), &err)) {
        error = mongo_error("find", err);
        return std::nullopt;
    }
    return info;
}

std::optional<RoomInfo> RoomStore::room(RedisConnection &r, const std::string &id, std::string &error) {
    const std::string key = prefix_ + "room:" + id;
    if (!r.ensure(error)) return std::nullopt;
    RedisReply cached = r.command({"HGETALL", key}, error);
    if (!cached || cached->type != REDIS_REPLY_ARRAY) {
        if (cached) error = "redis: unexpected HGETALL reply";
        return std::nullopt;
    }
    if (cached->elements >= 2) {
        std::map<std::string, std::string> f;
        for (size_t i = 0; i + 1 < cached->elements; i += 2)
            f[std::string(cached->element[i]->str, cached->element[i]->len)] =
                std::string(cached->element[i + 1]->str, cached->element[i + 1]->len);
        RoomInfo info;
        info.id = id;
        info.registered = f["type"] != "none";
        info.type = info.registered ? parse_type(f["type"]).value_or(RoomType::Private) : RoomType::Public;
        info.title = f["title"];
        info.topic = f["topic"];
        info.owner = f["owner"];
        info.archived = f["archived"] == "1";
        return info;
    }
    // A miss: load under WATCH, so that a write meanwhile makes EXEC store nothing.
    if (!r.command({"WATCH", prefix_ + "ver:" + id}, error)) return std::nullopt;
    std::optional<RoomInfo> info = load_room(id, error);
    if (!info) {
        r.command({"UNWATCH"}, error);
        return std::nullopt;
    }
    r.append({"MULTI"});
    r.append({"DEL", key});
    r.append({"HSET", key, "type", info->registered ? name_of(info->type) : "none", "title", info->title, "topic",
              info->topic, "owner", info->owner, "archived", info->archived ? "1" : "0"});
    r.append({"EXPIRE", key, ttl_});
    r.append({"EXEC"});
    std::string ignored;
    read_all(r, 5, ignored);  // not cached: the next read loads again
    return info;
}

std::optional<Role> RoomStore::role(RedisConnection &r, const std::string &room, const std::string &user,
                                    std::string &error) {
    const std::string key = prefix_ + "members:" + room;
    if (!r.ensure(error)) return std::nullopt;
    r.append({"HGET", key, user});
    r.append({"HEXISTS", key, "~"});
    RedisReply got = r.read(error);
    RedisReply complete = r.read(error);
    if (!got || !complete) return std::nullopt;
    if (got->type == REDIS_REPLY_STRING) return parse_role(std::string_view(got->str, got->len)).value_or(Role::None);
    if (complete->type == REDIS_REPLY_INTEGER && complete->integer == 1) return Role::None;

    if (!r.command({"WATCH", prefix_ + "ver:" + room}, error)) return std::nullopt;
    std::vector<std::string> hset{"HSET", key, "~", "1"};
    Role mine = Role::None;
    {
        auto client = acquire(error);
        if (!client) {
            r.command({"UNWATCH"}, error);
            return std::nullopt;
        }
        Collection members = collection(client, kMembers);
        Bson filter(BCON_NEW("roomId", BCON_UTF8(room.c_str())));
        Cursor cursor(mongoc_collection_find_with_opts(members.get(), filter.get(), nullptr, nullptr));
        const bson_t *doc = nullptr;
        while (mongoc_cursor_next(cursor.get(), &doc)) {
            std::string u = utf8_field(doc, "userId"), role_name = utf8_field(doc, "role");
            if (u.empty() || u == "~" || !parse_role(role_name)) continue;
            hset.push_back(u);
            hset.push_back(role_name);
            if (u == user) mine = *parse_role(role_name);
        }
        bson_error_t err;
        if (mongoc_cursor_error(cursor.get(), &err)) {
            error = mongo_error("find", err);
            r.command({"UNWATCH"}, error);
            return std::nullopt;
        }
    }
    r.append({"MULTI"});
    r.append({"DEL", key});
    r.append(hset);
    r.append({"EXPIRE", key, ttl_});
    r.append({"EXEC"});
    std::string ignored;
    read_all(r, 5, ignored);
    return mine;
}

RoomStore::Write RoomStore::invalidate(RedisConnection &r, const std::string &room, std::string &error) {
    if (!r.ensure(error)) return Write::Uncached;
    r.append({"MULTI"});
    r.append({"INCR", prefix_ + "ver:" + room});
    r.append({"DEL", prefix_ + "room:" + room, prefix_ + "members:" + room});
    r.append({"EXEC"});
    if (!read_all(r, 3, error)) return Write::Uncached;
    RedisReply exec = r.read(error);  // [n, deleted]; an error or nil: nothing was done
    if (!exec || exec->type != REDIS_REPLY_ARRAY || exec->elements != 2) {
        if (exec) error = "redis: the invalidation's EXEC was refused";
        return Write::Uncached;
    }
    return Write::Ok;
}

void RoomStore::ensure_indexes_once() {
    if (indexed_.load()) return;
    std::string error;
    if (ensure_indexes(error)) indexed_.store(true);
}

RoomStore::Created RoomStore::create(RedisConnection &r, const RoomInfo &room, int64_t now_ms, std::string &error) {
    {
        auto client = acquire(error);
        if (!client) return Created::Failed;
        Collection rooms = collection(client, kRooms);
        Bson doc(BCON_NEW("_id", BCON_UTF8(room.id.c_str()), "type", BCON_UTF8(name_of(room.type)), "title",
                          BCON_UTF8(room.title.c_str()), "topic", BCON_UTF8(room.topic.c_str()), "createdBy",
                          BCON_UTF8(room.owner.c_str()), "archived", BCON_BOOL(false), "createdAt",
                          BCON_DATE_TIME(now_ms), "updatedAt", BCON_DATE_TIME(now_ms)));
        bson_error_t err;
        if (!mongoc_collection_insert_one(rooms.get(), doc.get(), nullptr, nullptr, &err)) {
            if (err.code != kDuplicateKey) {
                error = mongo_error("insert", err);
                return Created::Failed;
            }
            // Taken. By this owner, and this type: a retry after a failure
            // half-way, which the owner's membership below completes.
            std::optional<RoomInfo> stored = load_room(room.id, error);
            if (!stored) return Created::Failed;
            if (stored->owner != room.owner || stored->type != room.type) return Created::Exists;
        }
    }
    if (set_member(r, room.id, room.owner, Role::Owner, room.owner, now_ms, error) != Write::Ok) return Created::Failed;
    return Created::Ok;
}

std::optional<RoomInfo> RoomStore::direct(RedisConnection &r, const std::string &a, const std::string &a_name,
                                          const std::string &b, const std::string &b_name, int64_t now_ms,
                                          bool &created, std::string &error) {
    created = false;
    RoomInfo info;
    info.id = direct_room_id(a, b);
    info.registered = true;
    info.type = RoomType::Direct;
    const std::string &lo = std::min(a, b), &hi = std::max(a, b);
    {
        auto client = acquire(error);
        if (!client) return std::nullopt;
        Collection rooms = collection(client, kRooms);
        Bson doc(BCON_NEW("_id", BCON_UTF8(info.id.c_str()), "type", BCON_UTF8("direct"), "title", BCON_UTF8(""),
                          "topic", BCON_UTF8(""), "createdBy", BCON_UTF8(a.c_str()), "archived", BCON_BOOL(false),
                          "members", "[", BCON_UTF8(lo.c_str()), BCON_UTF8(hi.c_str()), "]", "createdAt",
                          BCON_DATE_TIME(now_ms), "updatedAt", BCON_DATE_TIME(now_ms)));
        bson_t names;
        BSON_APPEND_ARRAY_BEGIN(doc.get(), "memberNames", &names);
        int k = 0;
        for (const auto &[id, name] : {std::pair{&a, &a_name}, std::pair{&b, &b_name}}) {
            if (name->empty()) continue;
            std::string key = std::to_string(k++);
            bson_t entry;
            BSON_APPEND_DOCUMENT_BEGIN(&names, key.c_str(), &entry);
            BSON_APPEND_UTF8(&entry, "userId", id->c_str());
            BSON_APPEND_UTF8(&entry, "user", name->c_str());
            bson_append_document_end(&names, &entry);
        }
        bson_append_array_end(doc.get(), &names);
        bson_error_t err;
        created = mongoc_collection_insert_one(rooms.get(), doc.get(), nullptr, nullptr, &err);
        if (!created && err.code != kDuplicateKey) {
            error = mongo_error("insert", err);
            return std::nullopt;
        }
    }
    std::optional<RoomInfo> stored = load_room(info.id, error);
    if (!stored) return std::nullopt;
    if (!stored->registered || stored->type != RoomType::Direct) {
        error = "room id " + info.id + " is taken by a room that is not this direct room";
        return std::nullopt;
    }
    info.owner = stored->owner;
    info.names = stored->names;
    // New: both members. There already: the opener (back), and the other
    // one only if it never was a member (a retry after a failure half-way).
    if (set_member(r, info.id, a, Role::Member, a, now_ms, error) != Write::Ok) return std::nullopt;
    if (!created) {
        std::optional<Role> theirs = role(r, info.id, b, error);
        if (!theirs) return std::nullopt;
        if (*theirs != Role::None || stored->ready) return info;  // b is in, or left: b's own choice
    }
    if (set_member(r, info.id, b, Role::Member, a, now_ms, error) != Write::Ok) return std::nullopt;
    // Both were added once: from now on only each user brings itself back.
    auto client = acquire(error);
    if (!client) return std::nullopt;
    Collection rooms = collection(client, kRooms);
    Bson filter(BCON_NEW("_id", BCON_UTF8(info.id.c_str())));
    Bson update(BCON_NEW("$set", "{", "ready", BCON_BOOL(true), "}"));
    bson_error_t err;
    if (!mongoc_collection_update_one(rooms.get(), filter.get(), update.get(), nullptr, nullptr, &err)) {
        error = mongo_error("update", err);
        return std::nullopt;
    }
    return info;
}

RoomStore::Write RoomStore::set_member(RedisConnection &r, const std::string &room, const std::string &user, Role role,
                                       const std::string &by, int64_t now_ms, std::string &error) {
    ensure_indexes_once();  // the unique (roomId, userId): two upserts at once make one row
    {
        auto client = acquire(error);
        if (!client) return Write::Failed;
        Collection members = collection(client, kMembers);
        Bson filter(BCON_NEW("roomId", BCON_UTF8(room.c_str()), "userId", BCON_UTF8(user.c_str())));
        Bson update(BCON_NEW("$set", "{", "role", BCON_UTF8(name_of(role)), "}", "$setOnInsert", "{", "addedBy",
                             BCON_UTF8(by.c_str()), "joinedAt", BCON_DATE_TIME(now_ms), "}"));
        Bson opts(BCON_NEW("upsert", BCON_BOOL(true)));
        bson_error_t err;
        if (!mongoc_collection_update_one(members.get(), filter.get(), update.get(), opts.get(), nullptr, &err) &&
            err.code != kDuplicateKey) {  // the concurrent upsert won: the row is there
            error = mongo_error("update", err);
            return Write::Failed;
        }
    }
    return invalidate(r, room, error);
}

RoomStore::Write RoomStore::remove_member(RedisConnection &r, const std::string &room, const std::string &user,
                                          std::string &error) {
    {
        auto client = acquire(error);
        if (!client) return Write::Failed;
        Collection members = collection(client, kMembers);
        Bson filter(BCON_NEW("roomId", BCON_UTF8(room.c_str()), "userId", BCON_UTF8(user.c_str())));
        bson_error_t err;
        // Many: rows made before the unique index existed go too.
        if (!mongoc_collection_delete_many(members.get(), filter.get(), nullptr, nullptr, &err)) {
            error = mongo_error("delete", err);
            return Write::Failed;
        }
    }
    return invalidate(r, room, error);
}

RoomStore::Write RoomStore::update(RedisConnection &r, const std::string &room, const std::optional<std::string> &title,
                       const std::optional<std::string> &topic, std::optional<bool> archived, int64_t now_ms,
                       std::string &error) {
    {
        auto client = acquire(error);
        if (!client) return Write::Failed;
        Collection rooms = collection(client, kRooms);
        Bson filter(BCON_NEW("_id", BCON_UTF8(room.c_str())));
        Bson set(bson_new());
        BSON_APPEND_DATE_TIME(set.get(), "updatedAt", now_ms);
        if (title) BSON_APPEND_UTF8(set.get(), "title", title->c_str());
        if (topic) BSON_APPEND_UTF8(set.get(), "topic", topic->c_str());
        if (archived) BSON_APPEND_BOOL(set.get(), "archived", *archived);
        Bson update(bson_new());
        BSON_APPEND_DOCUMENT(update.get(), "$set", set.get());
        bson_error_t err;
        if (!mongoc_collection_update_one(rooms.get(), filter.get(), update.get(), nullptr, nullptr, &err)) {
            error = mongo_error("update", err);
            return Write::Failed;
        }
    }
    return invalidate(r, room, error);
}

std::optional<std::vector<Membership>> RoomStore::rooms_of(const std::string &user, size_t limit, std::string &error) {
    auto client = acquire(error);
    if (!client) return std::nullopt;
    std::vector<Membership> out;
    std::map<std::string, size_t> at;
    {
        Collection members = collection(client, kMembers);
        Bson filter(BCON_NEW("userId", BCON_UTF8(user.c_str())));
        Bson opts(BCON_NEW("sort", "{", "joinedAt", BCON_INT32(-1), "}", "limit", BCON_INT64(static_cast<int64_t>(limit))));
        Cursor cursor(mongoc_collection_find_with_opts(members.get(), filter.get(), opts.get(), nullptr));
        const bson_t *doc = nullptr;
        while (mongoc_cursor_next(cursor.get(), &doc)) {
            Membership m;
            m.room.id = utf8_field(doc, "roomId");
            m.role = parse_role(utf8_field(doc, "role")).value_or(Role::None);
            bson_iter_t it;
            if (bson_iter_init_find(&it, doc, "joinedAt") && BSON_ITER_HOLDS_DATE_TIME(&it))
                m.joined_ms = bson_iter_date_time(&it);
            if (m.room.id.empty() || m.role == Role::None) continue;
            at[m.room.id] = out.size();
            out.push_back(std::move(m));
        }
        bson_error_t err;
        if (mongoc_cursor_error(cursor.get(), &err)) {
            error = mongo_error("find", err);
            return std::nullopt;
        }
    }
    if (out.empty()) return out;
    Collection rooms = collection(client, kRooms);
    Bson ids(bson_new());
    int i = 0;
    for (const Membership &m : out) {
        std::string k = std::to_string(i++);
        BSON_APPEND_UTF8(ids.get(), k.c_str(), m.room.id.c_str());
    }
    Bson in(bson_new());
    BSON_APPEND_ARRAY(in.get(), "$in", ids.get());
    Bson filter(bson_new());
    BSON_APPEND_DOCUMENT(filter.get(), "_id", in.get());
    Cursor cursor(mongoc_collection_find_with_opts(rooms.get(), filter.get(), nullptr, nullptr));
    const bson_t *doc = nullptr;
    while (mongoc_cursor_next(cursor.get(), &doc)) {
        RoomInfo info = room_of(doc);
        auto it = at.find(info.id);
        if (it != at.end()) out[it->second].room = std::move(info);
    }
    bson_error_t err;
    if (mongoc_cursor_error(cursor.get(), &err)) {
        error = mongo_error("find", err);
        return std::nullopt;
    }
    std::erase_if(out, [](const Membership &m) { return !m.room.registered; });  // a member row of a deleted room
    return out;
}

bool RoomStore::activity(RedisConnection &r, const std::string &user, const std::string &messages_collection,
                         std::vector<Membership> &rooms, std::string &error) {
    std::map<std::string, std::string> markers;
    if (!r.ensure(error)) return false;
    RedisReply read = r.command({"HGETALL", "chat:read:" + user}, error);
    if (!read) return false;
    if (read->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i + 1 < read->elements; i += 2)
            markers[std::string(read->element[i]->str, read->element[i]->len)] =
                std::string(read->element[i + 1]->str, read->element[i + 1]->len);
    auto client = acquire(error);
    if (!client) return false;
    Collection messages = collection(client, messages_collection);
    bson_oid_t me;
    const bool oid = bson_oid_is_valid(user.c_str(), user.size()) && user.size() == 24;
    if (oid) bson_oid_init_from_string(&me, user.c_str());
    for (Membership &m : rooms) {
        Bson filter(BCON_NEW("roomId", BCON_UTF8(m.room.id.c_str())));
        // The newest by createdAt; messages of one millisecond tie there, so
        // a few are read and the stream id decides.
        Bson opts(BCON_NEW("sort", "{", "createdAt", BCON_INT32(-1), "}", "limit", BCON_INT64(16)));
        Cursor cursor(mongoc_collection_find_with_opts(messages.get(), filter.get(), opts.get(), nullptr));
        const bson_t *doc = nullptr;
        plugin::StreamId newest;
        while (mongoc_cursor_next(cursor.get(), &doc)) {
            std::string id = utf8_field(doc, "streamId");
            std::optional<plugin::StreamId> sid = plugin::StreamId::parse(id);
            if (!sid || (!m.last_id.empty() && !(newest < *sid))) continue;
            newest = *sid;
            m.last_id = id;
            m.last_text = utf8_field(doc, "text");
            m.last_user = utf8_field(doc, "username");
            bson_iter_t it;
            if (bson_iter_init_find(&it, doc, "createdAt") && BSON_ITER_HOLDS_DATE_TIME(&it))
                m.last_ms = bson_iter_date_time(&it);
        }
        bson_error_t err;
        if (mongoc_cursor_error(cursor.get(), &err)) {
            error = mongo_error("find", err);
            return false;
        }
        if (m.last_id.empty()) continue;
        // Unread: others' messages stored after the marker's millisecond
        // (ids are <ms>-<seq>; createdAt is the ms).
        // No marker: counted from when the user became a member.
        auto marker = markers.find(m.room.id);
        int64_t since_ms = marker == markers.end() ? m.joined_ms - 1 : std::strtoll(marker->second.c_str(), nullptr, 10);
        if (marker != markers.end() && marker->second == m.last_id) continue;
        Bson count_filter(BCON_NEW("roomId", BCON_UTF8(m.room.id.c_str()), "createdAt", "{", "$gt",
                                   BCON_DATE_TIME(since_ms), "}"));
        {
            // The reader's own messages are not unread: its id is an
            // ObjectId (the auth plugin's users) or a string (an identity
            // provider's, stored as such by ingest with user_ids "any").
            bson_t ne;
            BSON_APPEND_DOCUMENT_BEGIN(count_filter.get(), "userId", &ne);
            if (oid) BSON_APPEND_OID(&ne, "$ne", &me);
            else BSON_APPEND_UTF8(&ne, "$ne", user.c_str());
            bson_append_document_end(count_filter.get(), &ne);
        }
        Bson count_opts(BCON_NEW("limit", BCON_INT64(kUnreadMax)));
        int64_t n = mongoc_collection_count_documents(messages.get(), count_filter.get(), count_opts.get(), nullptr,
                                                      nullptr, &err);
        if (n < 0) {
            error = mongo_error("count", err);
            return false;
        }
        m.unread = n;
    }
    std::stable_sort(rooms.begin(), rooms.end(), [](const Membership &a, const Membership &b) {
        return std::max(a.last_ms, a.joined_ms) > std::max(b.last_ms, b.joined_ms);
    });
    return true;
}

std::optional<std::string> RoomStore::user_id(const std::string &username, std::string &error) {
    auto client = acquire(error);
    if (!client) return std::nullopt;
    Collection users = collection(client, users_);
    Bson filter(BCON_NEW("username", BCON_UTF8(username.c_str())));
    Bson opts(BCON_NEW("limit", BCON_INT64(1), "projection", "{", "_id", BCON_INT32(1), "}"));
    Cursor cursor(mongoc_collection_find_with_opts(users.get(), filter.get(), opts.get(), nullptr));
    const bson_t *doc = nullptr;
    std::optional<std::string> out;
    if (mongoc_cursor_next(cursor.get(), &doc)) {
        std::string id = plugin::bson_id_string(doc, "_id");
        if (!id.empty()) out = std::move(id);
    }
    bson_error_t err;
    if (mongoc_cursor_error(cursor.get(), &err)) error = mongo_error("find", err);
    return out;
}

std::optional<bool> RoomStore::user_exists(const std::string &id, std::string &error) {
    auto client = acquire(error);
    if (!client) return std::nullopt;
    Collection users = collection(client, users_);
    Bson filter(bson_new());
    bson_oid_t oid;
    if (id.size() == 24 && bson_oid_is_valid(id.c_str(), id.size())) {
        bson_oid_init_from_string(&oid, id.c_str());
        BSON_APPEND_OID(filter.get(), "_id", &oid);
    } else {
        BSON_APPEND_UTF8(filter.get(), "_id", id.c_str());
    }
    Bson opts(BCON_NEW("limit", BCON_INT64(1), "projection", "{", "_id", BCON_INT32(1), "}"));
    Cursor cursor(mongoc_collection_find_with_opts(users.get(), filter.get(), opts.get(), nullptr));
    const bson_t *doc = nullptr;
    bool found = mongoc_cursor_next(cursor.get(), &doc);
    bson_error_t err;
    if (mongoc_cursor_error(cursor.get(), &err)) {
        error = mongo_error("find", err);
        return std::nullopt;
    }
    return found;
}

std::optional<bool> RoomStore::count_creation(RedisConnection &r, const std::string &user, int64_t max,
                                              std::string &error) {
    if (!r.ensure(error)) return std::nullopt;
    // The hour starts at the user's first creation (no clock-hour edge).
    const std::string key = prefix_ + "created:" + user;
    RedisReply n = r.command({"INCR", key}, error);
    if (!n || n->type != REDIS_REPLY_INTEGER) return std::nullopt;
    if (n->integer == 1 && !r.command({"EXPIRE", key, "3600"}, error)) return std::nullopt;
    return n->integer <= max;
}

bool RoomStore::publish(RedisConnection &r, const std::string &event_json, std::string &error) {
    if (!r.ensure(error)) return false;
    RedisReply rep = r.command({"PUBLISH", events_channel(), event_json}, error);
    return rep && rep->type == REDIS_REPLY_INTEGER;
}

}  // namespace aurora::rooms
