#include "ingest_settings.h"

#include <cctype>

namespace aurora::ingest {

namespace {

using plugin::Setting;

const Setting kSettings[] = {
    {"stream", Setting::String, "\"chat:messages\"", "the Redis stream to consume (the chat plugin's `stream`)"},
    {"group", Setting::String, "\"mongo_workers\"", "consumer group (created with `MKSTREAM` if absent)"},
    {"dead_letter_stream", Setting::String, "\"chat:messages:dead\"",
     "where entries go after failing `max_deliveries` times (see docs/ingest.md)"},
    {"collection", Setting::String, "\"messages\"", "collection of the messages (database from `mongo.url`)"},
    {"consumer_name", Setting::String, "\"\"",
     "consumer name prefix, `-<n>` appended per worker; empty: `<hostname>-<pid>`. A stable name lets a restarted "
     "process drain its own pending entries first"},
    {"workers", Setting::Int, "2", "consumer threads in this process (0: history only)", 0, 64},
    {"batch", Setting::Int, "500",
     "entries per `XREADGROUP COUNT` and per `insert_many` (at most: a batch holds what is there). On FerretDB with "
     "SQLite keep its `--test-batch-size` at least this, so that a batch is one transaction",
     1, 10000},
    {"block_ms", Setting::Int, "5000", "`XREADGROUP BLOCK` time when the stream is idle", 1, 60000},
    {"claim_idle_ms", Setting::Int, "30000",
     "an entry pending this long on any consumer (a crashed worker's batch, a failed entry) is claimed with "
     "`XAUTOCLAIM` and retried",
     100, 86400000},
    {"claim_interval_ms", Setting::Int, "5000", "how often each worker runs `XAUTOCLAIM`", 50, 3600000},
    {"max_deliveries", Setting::Int, "5",
     "an entry that fails on its Nth delivery is moved to `dead_letter_stream` and acknowledged", 1, 1000},
    {"backoff_initial_ms", Setting::Int, "100", "first wait after MongoDB failed a batch (doubles each time)", 1,
     60000},
    {"backoff_max_ms", Setting::Int, "5000", "longest wait between retries of a batch while MongoDB is down", 1,
     600000},
    {"mongo_timeout_ms", Setting::Int, "2000",
     "MongoDB server selection and connect timeout (added to `mongo.url` unless it sets them)", 100, 120000},
    {"redis_timeout_ms", Setting::Int, "2000", "Redis connect and command timeout (on top of `block_ms` for reads)",
     10, 60000},
    {"stats_interval_ms", Setting::Int, "1000", "how often lag/pending gauges and MongoDB health are refreshed", 100,
     60000},
    {"secondary_indexes", Setting::Bool, "true",
     "create `{roomId: 1, createdAt: -1}` (history) and `{userId: 1}` besides the unique `{streamId: 1}`. `false` "
     "only on FerretDB with SQLite, which never uses them (it pushes down no filter but `_id`) and spends about a "
     "third of its insert CPU maintaining them (docs/ingest.md, Performance)"},
    {"history", Setting::Bool, "true",
     "serve `GET /api/rooms/{room}/messages` and the WebSocket `history` request (needs `jwt.secret`)"},
    {"history_workers", Setting::Int, "2", "threads that run history queries", 1, 32},
    {"history_default_limit", Setting::Int, "50", "messages per page when the request gives no `limit`", 1, 10000},
    {"history_max_limit", Setting::Int, "100", "largest page; a larger `limit` is capped to it", 1, 10000},
    {"history_max_queue", Setting::Int, "1024", "history requests waiting for a thread before 503 / `unavailable`",
     1, 1000000},
    {"jwt_algorithm", Setting::String, "\"HS256\"",
     "the algorithm history tokens must use: `HS256`, `HS384` or `HS512` (as the auth plugin's)"},
    {"leeway_s", Setting::Int, "30", "clock skew allowed when checking a token's `exp` and `nbf`", 0, 600},
};

}  // namespace

std::span<const plugin::Setting> ingest_settings() { return kSettings; }

std::optional<IngestSettings> load_settings(aurora_str config_json, std::string &error) {
    auto s = plugin::Settings::parse(config_json, kSettings, error);
    if (!s) return std::nullopt;
    IngestSettings o;
    o.stream = s->string("stream");
    o.group = s->string("group");
    o.dead_letter_stream = s->string("dead_letter_stream");
    o.collection = s->string("collection");
    o.consumer_name = s->string("consumer_name");
    o.workers = static_cast<int>(s->integer("workers"));
    o.batch = static_cast<int>(s->integer("batch"));
    o.block_ms = s->integer("block_ms");
    o.claim_idle_ms = s->integer("claim_idle_ms");
    o.claim_interval_ms = s->integer("claim_interval_ms");
    o.max_deliveries = s->integer("max_deliveries");
    o.backoff_initial_ms = s->integer("backoff_initial_ms");
    o.backoff_max_ms = s->integer("backoff_max_ms");
    o.mongo_timeout_ms = s->integer("mongo_timeout_ms");
    o.redis_timeout_ms = s->integer("redis_timeout_ms");
    o.stats_interval_ms = s->integer("stats_interval_ms");
    o.secondary_indexes = s->boolean("secondary_indexes");
    o.history = s->boolean("history");
    o.history_workers = static_cast<int>(s->integer("history_workers"));
    o.history_default_limit = s->integer("history_default_limit");
    o.history_max_limit = s->integer("history_max_limit");
    o.history_max_queue = static_cast<size_t>(s->integer("history_max_queue"));
    o.leeway_s = s->integer("leeway_s");
    const std::string &alg = s->string("jwt_algorithm");
    if (alg == "HS256") o.jwt_alg = JWT_ALG_HS256;
    else if (alg == "HS384") o.jwt_alg = JWT_ALG_HS384;
    else if (alg == "HS512") o.jwt_alg = JWT_ALG_HS512;
    else {
        error = "setting \"jwt_algorithm\" must be HS256, HS384 or HS512 (got \"" + alg + "\")";
        return std::nullopt;
    }
    if (o.stream.empty() || o.group.empty() || o.dead_letter_stream.empty() || o.collection.empty()) {
        error = "settings \"stream\", \"group\", \"dead_letter_stream\" and \"collection\" must not be empty";
        return std::nullopt;
    }
    if (o.dead_letter_stream == o.stream) {
        error = "setting \"dead_letter_stream\" must differ from \"stream\"";
        return std::nullopt;
    }
    if (o.backoff_max_ms < o.backoff_initial_ms) {
        error = "setting \"backoff_max_ms\" must be at least \"backoff_initial_ms\"";
        return std::nullopt;
    }
    if (o.history_default_limit > o.history_max_limit) {
        error = "setting \"history_default_limit\" must not exceed \"history_max_limit\"";
        return std::nullopt;
    }
    return o;
}

std::string mongo_url_with_timeouts(const std::string &url, int64_t timeout_ms) {
    std::string out = url;
    size_t q = out.find('?');
    std::string query = q == std::string::npos ? std::string() : out.substr(q + 1);
    auto has = [&](const char *key) {
        std::string k = std::string(key) + "=";
        // Option names are case-insensitive in MongoDB URIs.
        std::string lq, lk;
        for (char c : query) lq += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        for (char c : k) lk += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return lq.starts_with(lk) || lq.find("&" + lk) != std::string::npos;
    };
    std::string add;
    auto put = [&](const char *key, int64_t v) {
        if (has(key)) return;
        add += (add.empty() ? "" : "&") + std::string(key) + "=" + std::to_string(v);
    };
    put("serverSelectionTimeoutMS", timeout_ms);
    put("connectTimeoutMS", timeout_ms);
    put("heartbeatFrequencyMS", 1000);
    if (add.empty()) return out;
    if (q == std::string::npos) {
        // mongodb://host[:port]/db -> a '/' must precede '?' when there is no database.
        size_t scheme = out.find("://");
        size_t slash = out.find('/', scheme == std::string::npos ? 0 : scheme + 3);
        return out + (slash == std::string::npos ? "/?" : "?") + add;
    }
    return out + (query.empty() ? "" : "&") + add;
}

}  // namespace aurora::ingest
