#include "user_store.h"

namespace aurora::auth {

using plugin::Bson;
using plugin::Collection;
using plugin::Cursor;

namespace {

constexpr uint32_t kDuplicateKey = 11000;

Bson make_bson() { return Bson(bson_new()); }

}  // namespace

bool UserStore::ensure_indexes(std::string &error) {
    auto client = pool_.acquire();
    if (!client) {
        error = "mongo: no client";
        return false;
    }
    mongoc_database_t *db_raw = mongoc_client_get_database(client.get(), pool_.database().c_str());
    std::unique_ptr<mongoc_database_t, decltype(&mongoc_database_destroy)> db(db_raw, mongoc_database_destroy);
    Bson cmd(BCON_NEW("createIndexes", BCON_UTF8(collection_.c_str()), "indexes", "[", "{", "key", "{", "username",
                      BCON_INT32(1), "}", "name", BCON_UTF8("username_1"), "unique", BCON_BOOL(true), "}", "]"));
    bson_t reply;
    bson_error_t err;
    bool ok = mongoc_database_write_command_with_opts(db.get(), cmd.get(), nullptr, &reply, &err);
    bson_destroy(&reply);
    if (!ok) error = std::string("mongo createIndexes: ") + err.message;
    return ok;
}

UserStore::Insert UserStore::insert(const std::string &username, const std::string &password_hash, int64_t now_ms,
                                    std::string &error) {
    auto client = pool_.acquire();
    if (!client) {
        error = "mongo: no client";
        return Insert::Failed;
    }
    Collection users(mongoc_client_get_collection(client.get(), pool_.database().c_str(), collection_.c_str()));
    Bson doc = make_bson();
    bson_oid_t oid;
    bson_oid_init(&oid, nullptr);
    BSON_APPEND_OID(doc.get(), "_id", &oid);
    BSON_APPEND_UTF8(doc.get(), "username", username.c_str());
    BSON_APPEND_UTF8(doc.get(), "passwordHash", password_hash.c_str());
    BSON_APPEND_DATE_TIME(doc.get(), "createdAt", now_ms);
    BSON_APPEND_DATE_TIME(doc.get(), "updatedAt", now_ms);
    bson_error_t err;
    bson_t reply;
    bool ok = mongoc_collection_insert_one(users.get(), doc.get(), nullptr, &reply, &err);
    bson_destroy(&reply);
    if (ok) return Insert::Created;
    if (err.code == kDuplicateKey) return Insert::Duplicate;
    error = std::string("mongo insert: ") + err.message;
    return Insert::Failed;
}

std::optional<StoredUser> UserStore::find(const std::string &username, std::string &error) {
    auto client = pool_.acquire();
    if (!client) {
        error = "mongo: no client";
        return std::nullopt;
    }
    Collection users(mongoc_client_get_collection(client.get(), pool_.database().c_str(), collection_.c_str()));
    Bson filter(BCON_NEW("username", BCON_UTF8(username.c_str())));
    Bson opts(BCON_NEW("limit", BCON_INT64(1), "projection", "{", "username", BCON_INT32(1), "passwordHash",
                       BCON_INT32(1), "}"));
    Cursor cursor(mongoc_collection_find_with_opts(users.get(), filter.get(), opts.get(), nullptr));
    const bson_t *doc = nullptr;
    std::optional<StoredUser> out;
    if (mongoc_cursor_next(cursor.get(), &doc)) {
        StoredUser u;
        bson_iter_t it;
        if (bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_OID(&it)) {
            char hex[25];
            bson_oid_to_string(bson_iter_oid(&it), hex);
            u.id_hex = hex;
        }
        if (bson_iter_init_find(&it, doc, "username") && BSON_ITER_HOLDS_UTF8(&it))
            u.username = bson_iter_utf8(&it, nullptr);
        if (bson_iter_init_find(&it, doc, "passwordHash") && BSON_ITER_HOLDS_UTF8(&it))
            u.password_hash = bson_iter_utf8(&it, nullptr);
        if (u.id_hex.empty() || u.password_hash.empty()) {
            error = "mongo: user document without an ObjectId _id or a passwordHash";
            return std::nullopt;
        }
        out = std::move(u);
    }
    bson_error_t err;
    if (mongoc_cursor_error(cursor.get(), &err)) {
        error = std::string("mongo find: ") + err.message;
        return std::nullopt;
    }
    return out;
}

}  // namespace aurora::auth
