#include "mongo_pool.h"

#include <mutex>

namespace aurora::plugin {

std::unique_ptr<MongoPool> MongoPool::create(const std::string &url, std::string &error) {
    static std::once_flag once;
    std::call_once(once, [] { mongoc_init(); });
    bson_error_t err;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(url.c_str(), &err);
    if (!uri) {
        error = std::string("mongo url: ") + err.message;
        return nullptr;
    }
    auto pool = std::make_unique<MongoPool>();
    const char *db = mongoc_uri_get_database(uri);
    pool->database_ = db && *db ? db : "aurorachat";
    pool->pool_ = mongoc_client_pool_new(uri);
    mongoc_uri_destroy(uri);
    if (!pool->pool_) {
        error = "mongo: cannot create a client pool for " + url;
        return nullptr;
    }
    mongoc_client_pool_set_error_api(pool->pool_, MONGOC_ERROR_API_VERSION_2);
    mongoc_client_pool_set_appname(pool->pool_, "aurora");
    return pool;
}

MongoPool::~MongoPool() {
    if (pool_) mongoc_client_pool_destroy(pool_);
}

MongoPool::Client MongoPool::acquire() { return Client(mongoc_client_pool_pop(pool_), Release{pool_}); }

}  // namespace aurora::plugin
