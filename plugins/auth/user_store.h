// Users in MongoDB (seed §4.1.3): collection `users` of the database named in
// mongo.url, documents {username, passwordHash, createdAt, updatedAt}, with a
// unique index on username. Duplicates are detected by that index (error
// 11000), never by a find-then-insert. Blocking I/O: worker threads only.
// Thread-safe (the pool is; each call borrows its own client).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "mongo_pool.h"

namespace aurora::auth {

struct StoredUser {
    std::string id_hex;  // the ObjectId as 24 hex digits (the token's userId)
    std::string username;
    std::string password_hash;
};

class UserStore {
public:
    UserStore(plugin::MongoPool &pool, std::string collection) : pool_(pool), collection_(std::move(collection)) {}

    // Creates the unique index on username (idempotent). False with `error`.
    bool ensure_indexes(std::string &error);

    enum class Insert { Created, Duplicate, Failed };
    Insert insert(const std::string &username, const std::string &password_hash, int64_t now_ms, std::string &error);

    // The user, or nullopt: not found when `error` stays empty, else a failure.
    std::optional<StoredUser> find(const std::string &username, std::string &error);

private:
    plugin::MongoPool &pool_;
    std::string collection_;
};

}  // namespace aurora::auth
