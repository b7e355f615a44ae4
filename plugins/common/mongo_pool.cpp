#include "mongo_pool.h"

#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <vector>

#include "json.h"

namespace aurora::plugin {

namespace {

// Where the driver's messages go: the host's log, as the plugin that owns
// the newest live pool. libmongoc has one handler per process and each
// plugin library its own copy of this file: the handler is the copy of the
// plugin that created a pool last, and when that plugin's pools are gone
// (it shut down first) the line is written in the host's JSON shape with
// source "mongoc". The plugins that use this are linked with -z nodelete,
// so the handler's code stays mapped after dlclose.
struct LogSink {
    const aurora_host_api *host;
    aurora_plugin_ctx *self;
    const MongoPool *pool;
};
std::mutex g_sinks_mu;
std::vector<LogSink> g_sinks;  // guarded by g_sinks_mu

void driver_log(mongoc_log_level_t level, const char *domain, const char *message, void *) {
    // FerretDB has no endSessions; the driver says so at every pool teardown.
    if (level > MONGOC_LOG_LEVEL_WARNING || std::strstr(message, "endSessions")) return;
    std::lock_guard lock(g_sinks_mu);
    if (g_sinks.empty()) {
        timeval tv{};
        gettimeofday(&tv, nullptr);
        tm utc{};
        gmtime_r(&tv.tv_sec, &utc);
        char ts[80];
        std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900, utc.tm_mon + 1,
                      utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, static_cast<int>(tv.tv_usec / 1000));
        std::string line = std::string("{\"ts\":\"") + ts + "\",\"level\":\"" +
                           (level == MONGOC_LOG_LEVEL_WARNING ? "warn" : "error") + "\",\"source\":\"mongoc\",\"msg\":";
        append_json_string(line, std::string(domain) + ": " + message);
        line += "}\n";
        if (::write(STDERR_FILENO, line.data(), line.size()) < 0) return;  // one write: lines never interleave
        return;
    }
    const LogSink &s = g_sinks.back();
    s.host->log_msg(s.self, level == MONGOC_LOG_LEVEL_WARNING ? AURORA_LOG_WARN : AURORA_LOG_ERROR, "mongoc %s: %s",
                    domain, message);
}

}  // namespace

std::unique_ptr<MongoPool> MongoPool::create(const std::string &url, std::string &error, const aurora_host_api *host,
                                             aurora_plugin_ctx *self) {
    static std::once_flag once;
    std::call_once(once, [] {
        mongoc_init();
        // The driver logs to stderr by itself, in its own format, down to
        // DEBUG. Keep warnings and errors, one line each, in the host's log.
        mongoc_log_set_handler(driver_log, nullptr);
    });
    bson_error_t err;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(url.c_str(), &err);
    if (!uri) {
        error = std::string("mongo url: ") + err.message;
        return nullptr;
    }
    // Bounded waits when MongoDB is down, unless the URL says otherwise: a
    // worker blocked in server selection delays shutdown by that much. And
    // a deadline on every operation: a server that accepts but never
    // answers (a frozen process, a full disk) would hold a thread forever.
    if (!mongoc_uri_has_option(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
        mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 3000);
    if (!mongoc_uri_has_option(uri, MONGOC_URI_CONNECTTIMEOUTMS))
        mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, 2000);
    if (!mongoc_uri_has_option(uri, MONGOC_URI_SOCKETTIMEOUTMS))
        mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, 10000);
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
    if (host && self) {
        std::lock_guard lock(g_sinks_mu);
        g_sinks.push_back(LogSink{host, self, pool.get()});
        pool->logs_ = true;
    }
    return pool;
}

void MongoPool::detach_log() {
    if (!logs_) return;
    std::lock_guard lock(g_sinks_mu);
    std::erase_if(g_sinks, [this](const LogSink &s) { return s.pool == this; });
    logs_ = false;
}

MongoPool::~MongoPool() {
    if (pool_) mongoc_client_pool_destroy(pool_);  // its threads may log until here
    detach_log();
}

MongoPool::Client MongoPool::acquire() { return Client(mongoc_client_pool_pop(pool_), Release{pool_}); }

}  // namespace aurora::plugin
