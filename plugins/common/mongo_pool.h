// A libmongoc client pool (thread-safe) and the RAII to borrow from it.
// mongoc_init() runs once per process; mongoc_cleanup() is left to process
// exit because other plugins in the same host may still use the driver.
// The driver's warnings and errors go through the host's log (as the plugin
// that created the newest live pool, text "mongoc ..."; see mongo_pool.cpp).
//
//     auto pool = MongoPool::create(url, err, host, self);   // init
//     auto client = pool.acquire();             // any thread; returned on scope exit
//     mongoc_collection_t *users = ...(client.get(), db, "users");
#pragma once

#include <aurora/aurora.h>
#include <mongoc/mongoc.h>

#include <memory>
#include <string>

namespace aurora::plugin {

class MongoPool {
public:
    // nullptr with `error` for a URL libmongoc refuses. `host` and `self`
    // (both or neither) route the driver's messages through the host's
    // log for as long as this pool lives; without them they go to stderr.
    static std::unique_ptr<MongoPool> create(const std::string &url, std::string &error,
                                             const aurora_host_api *host = nullptr, aurora_plugin_ctx *self = nullptr);
    MongoPool() = default;  // use create()
    ~MongoPool();
    MongoPool(const MongoPool &) = delete;
    MongoPool &operator=(const MongoPool &) = delete;

    struct Release {
        mongoc_client_pool_t *pool;
        void operator()(mongoc_client_t *c) const { mongoc_client_pool_push(pool, c); }
    };
    using Client = std::unique_ptr<mongoc_client_t, Release>;
    Client acquire();  // blocks while every client of the pool is in use

    const std::string &database() const { return database_; }  // from the URL path ("aurorachat")
    // Stops routing the driver's messages through this pool's plugin (for a
    // pool left alive past the plugin, as on a failed init).
    void detach_log();

private:
    mongoc_client_pool_t *pool_ = nullptr;
    bool logs_ = false;  // registered as a log sink of the driver
    std::string database_;
};

struct BsonDelete {
    void operator()(bson_t *b) const { bson_destroy(b); }
};
using Bson = std::unique_ptr<bson_t, BsonDelete>;

struct CollectionDelete {
    void operator()(mongoc_collection_t *c) const { mongoc_collection_destroy(c); }
};
using Collection = std::unique_ptr<mongoc_collection_t, CollectionDelete>;

struct CursorDelete {
    void operator()(mongoc_cursor_t *c) const { mongoc_cursor_destroy(c); }
};
using Cursor = std::unique_ptr<mongoc_cursor_t, CursorDelete>;

// A document's string field ("" when absent or not a string).
inline std::string bson_string(const bson_t *doc, const char *key) {
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, key) || !BSON_ITER_HOLDS_UTF8(&it)) return {};
    uint32_t len = 0;
    const char *s = bson_iter_utf8(&it, &len);
    return std::string(s, len);
}

// A user id field as text: an ObjectId's 24 hex digits, or the string
// stored for ids that are not ObjectIds ("" otherwise).
inline std::string bson_id_string(const bson_t *doc, const char *key) {
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, key)) return {};
    if (BSON_ITER_HOLDS_OID(&it)) {
        char hex[25];
        bson_oid_to_string(bson_iter_oid(&it), hex);
        return hex;
    }
    return BSON_ITER_HOLDS_UTF8(&it) ? std::string(bson_iter_utf8(&it, nullptr)) : std::string();
}

}  // namespace aurora::plugin
