#include "ingest_settings.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "content_sniff.h"
#include "room_name.h"

namespace aurora::ingest {

namespace {

using plugin::Field;
using plugin::Setting;

const Field<IngestSettings> kFields[] = {
    {{"stream", Setting::String, "\"chat:messages\"", "the Redis stream to consume (the chat plugin's `stream`)"},
     &IngestSettings::stream},
    {{"group", Setting::String, "\"mongo_workers\"", "consumer group (created with `MKSTREAM` if absent)"},
     &IngestSettings::group},
    {{"dead_letter_stream", Setting::String, "\"chat:messages:dead\"",
     "where entries go after failing `max_deliveries` times (see docs/ingest.md)"},
     &IngestSettings::dead_letter_stream},
    {{"collection", Setting::String, "\"messages\"", "collection of the messages (database from `mongo.url`)"},
     &IngestSettings::collection},
    {{"changes_collection", Setting::String, "\"message_changes\"",
     "collection of the changes to messages (edits, deletes, reactions), each stored once; folded onto the message"},
     &IngestSettings::changes_collection},
    {{"consumer_name", Setting::String, "\"\"",
     "consumer name prefix, `-<n>` appended per worker; empty: `<hostname>-s<slot>`, the slot the lowest number "
     "whose lock file in `consumer_lock_dir` no other process on this machine holds. Either way the name survives a "
     "restart, so that the process drains its own pending entries at once"}, &IngestSettings::consumer_name},
    {{"consumer_lock_dir", Setting::String, "\"/tmp\"",
     "where the slot lock files of the default consumer names live (the kernel releases a lock when its process "
     "exits, even on kill -9)"}, &IngestSettings::consumer_lock_dir},
    {{"consumer_reap_idle_ms", Setting::Int, "3600000",
     "consumers of the group with nothing pending and idle this long (a process that is gone) are deleted by the "
     "housekeeping thread, atomically in a script; 0: never. Must exceed `block_ms` + `redis_timeout_ms`",
     0, 604800000}, &IngestSettings::consumer_reap_idle_ms},
    {{"workers", Setting::Int, "2", "consumer threads in this process (0: history only)", 0, 64},
     &IngestSettings::workers},
    {{"batch", Setting::Int, "500",
     "entries per `XREADGROUP COUNT` and per `insert_many` (at most: a batch holds what is there). On FerretDB with "
     "SQLite keep its `--test-batch-size` at least this, so that a batch is one transaction",
     1, 10000}, &IngestSettings::batch},
    {{"block_ms", Setting::Int, "5000", "`XREADGROUP BLOCK` time when the stream is idle", 1, 60000},
     &IngestSettings::block_ms},
    {{"claim_idle_ms", Setting::Int, "30000",
     "an entry pending this long on any consumer (a crashed worker's batch, a failed entry) is claimed with "
     "`XAUTOCLAIM` and retried",
     100, 86400000}, &IngestSettings::claim_idle_ms},
    {{"claim_interval_ms", Setting::Int, "5000", "how often each worker runs `XAUTOCLAIM`", 50, 3600000},
     &IngestSettings::claim_interval_ms},
    {{"max_deliveries", Setting::Int, "5",
     "an entry that fails on its Nth delivery is moved to `dead_letter_stream` and acknowledged", 1, 1000},
     &IngestSettings::max_deliveries},
    {{"backoff_initial_ms", Setting::Int, "100", "first wait after MongoDB failed a batch (doubles each time)", 1,
     60000}, &IngestSettings::backoff_initial_ms},
    {{"backoff_max_ms", Setting::Int, "5000", "longest wait between retries of a batch while MongoDB is down", 1,
     600000}, &IngestSettings::backoff_max_ms},
    {{"mongo_timeout_ms", Setting::Int, "2000",
     "MongoDB server selection and connect timeout (added to `mongo.url` unless it sets them), and the deadline of "
     "the health ping: a store that stops answering is reported within `mongo_timeout_ms` + `stats_interval_ms`",
     100, 120000}, &IngestSettings::mongo_timeout_ms},
    {{"mongo_op_timeout_ms", Setting::Int, "10000",
     "deadline of every MongoDB operation of the writers and history (`socketTimeoutMS`, added to `mongo.url` "
     "unless it sets it): a batch or a page that gets no answer fails and is retried or answered `unavailable`",
     100, 600000}, &IngestSettings::mongo_op_timeout_ms},
    {{"redis_timeout_ms", Setting::Int, "2000", "Redis connect and command timeout (on top of `block_ms` for reads)",
     10, 60000}, &IngestSettings::redis_timeout_ms},
    {{"stats_interval_ms", Setting::Int, "1000", "how often lag/pending gauges and MongoDB health are refreshed", 100,
     60000}, &IngestSettings::stats_interval_ms},
    {{"stream_keep_s", Setting::Int, "0",
     "trim the stream of entries older than this, and only once every consumer group has acknowledged them (never "
     "an entry ingest has not stored); 0: ingest does not trim (chat's `stream_maxlen` caps it instead, without "
     "that guarantee)",
     0, 1e9}, &IngestSettings::stream_keep_s},
    {{"retention_s", Setting::Int, "0",
     "delete stored messages (and their changes) older than this; 0 keeps them. FerretDB has no TTL index: the plugin "
     "deletes every `retention_interval_s`",
     0, 1e11}, &IngestSettings::retention_s},
    {{"room_retention", Setting::StringList, "[]",
     "per-room retention, `\"room=seconds\"` entries that override `retention_s` for their room (`=0`: kept)"},
     &IngestSettings::room_retention},
    {{"retention_interval_s", Setting::Int, "60", "how often expired messages are deleted", 1, 86400},
     &IngestSettings::retention_interval_s},
    {{"unique_key", Setting::String, "\"\"",
     "the unique index that makes a redelivered entry a duplicate: `streamId` (the seed's; single and Sentinel "
     "modes' default) or `roomId,streamId` (cluster mode's, required there, and what a MongoDB collection sharded on "
     "`{roomId: 1, streamId: 1}` needs: docs/ingest.md, Sharding the collection)"}, &IngestSettings::unique_key},
    {{"user_ids", Setting::String, "\"objectid\"",
     "`objectid`: a message's userId must be an ObjectId (the seed's schema, the auth plugin's users); `any`: other ids "
     "(an identity provider's `sub`, docs/auth.md) are stored as strings instead of being dead-lettered; anonymous "
     "senders (`anon-...`) never are"},
     &IngestSettings::user_ids},
    {{"secondary_indexes", Setting::Bool, "true",
     "create `{roomId: 1, createdAt: -1}` (history) and `{userId: 1}` besides the unique index. `false` "
     "only on FerretDB with SQLite, which never uses them (it pushes down no filter but `_id`) and spends about a "
     "third of its insert CPU maintaining them (docs/ingest.md, Performance)"}, &IngestSettings::secondary_indexes},
    {{"history", Setting::Bool, "true",
     "serve `GET /api/rooms/{room}/messages` and the WebSocket `history` request (needs `jwt.secret`)"},
     &IngestSettings::history},
    {{"search", Setting::Bool, "false",
     "index each message's words (`tokens`, with `{roomId: 1, tokens: 1}`) and serve `search` and "
     "`GET /api/rooms/{room}/search` (needs `history`): docs/ingest.md, Search"},
     &IngestSettings::search},
    {{"history_workers", Setting::Int, "2", "threads that run history queries", 1, 32},
     &IngestSettings::history_workers},
    {{"history_default_limit", Setting::Int, "50", "messages per page when the request gives no `limit`", 1, 10000},
     &IngestSettings::history_default_limit},
    {{"history_max_limit", Setting::Int, "100", "largest page; a larger `limit` is capped to it", 1, 10000},
     &IngestSettings::history_max_limit},
    {{"history_max_queue", Setting::Int, "1024", "history requests waiting for a thread before 503 / `unavailable`",
     1, 1000000}, &IngestSettings::history_max_queue},
    {{"uploads", Setting::Bool, "false",
     "serve `POST /api/uploads` and `GET /api/uploads/{id}` (files in MongoDB GridFS, referenced from messages; "
     "needs `history`): docs/ingest.md, Attachments"}, &IngestSettings::uploads},
    {{"upload_bucket", Setting::String, "\"uploads\"", "the GridFS bucket (collections `<bucket>.files`, `<bucket>.chunks`)"},
     &IngestSettings::upload_bucket},
    {{"upload_max_bytes", Setting::Int, "10485760", "largest upload; a larger body is a 413 before it is read whole",
     1, 1073741824}, &IngestSettings::upload_max_bytes},
    {{"upload_quota_bytes", Setting::Int, "104857600", "bytes of uploads each user may keep (0: no quota)", 0,
     1099511627776}, &IngestSettings::upload_quota_bytes},
    {{"upload_types", Setting::StringList,
     "[\"image/png\", \"image/jpeg\", \"image/gif\", \"image/webp\", \"application/pdf\", \"text/plain\"]",
     "the types accepted, as sniffed from the bytes (a subset of the default; HTML and SVG never are)"},
     &IngestSettings::upload_types},
    {{"upload_attach_s", Setting::Int, "86400", "how long after its upload a file may be attached to a message", 60,
     31536000}, &IngestSettings::upload_attach_s},
    {{"upload_timeout_ms", Setting::Int, "60000", "time for an upload's whole body to arrive (408 after it)", 1000,
     3600000}, &IngestSettings::upload_timeout_ms},
    {{"upload_workers", Setting::Int, "2", "threads that store and serve uploads", 1, 32},
     &IngestSettings::upload_workers},
    {{"upload_max_queue", Setting::Int, "64", "upload requests waiting for a thread before 503", 1, 100000},
     &IngestSettings::upload_max_queue},
    {{"jwt_algorithm", Setting::String, "\"HS256\"",
     "the algorithm history tokens must use: `HS256`, `HS384` or `HS512` (as the auth plugin's)"},
     &IngestSettings::jwt_algorithm},
    {{"leeway_s", Setting::Int, "30", "clock skew allowed when checking a token's `exp` and `nbf`", 0, 600},
     &IngestSettings::leeway_s},
};

}  // namespace

std::span<const plugin::Setting> ingest_settings() {
    static const std::vector<Setting> table = plugin::settings_of<IngestSettings>(kFields);
    return table;
}

std::optional<IngestSettings> load_settings(aurora_str config_json, std::string &error) {
    std::optional<IngestSettings> parsed = plugin::parse_settings(config_json, kFields, error);
    if (!parsed) return std::nullopt;
    IngestSettings &o = *parsed;
    const std::string &alg = o.jwt_algorithm;
    if (alg == "HS256") o.jwt_alg = JWT_ALG_HS256;
    else if (alg == "HS384") o.jwt_alg = JWT_ALG_HS384;
    else if (alg == "HS512") o.jwt_alg = JWT_ALG_HS512;
    else {
        error = "setting \"jwt_algorithm\" must be HS256, HS384 or HS512 (got \"" + alg + "\")";
        return std::nullopt;
    }
    if (o.stream.empty() || o.group.empty() || o.dead_letter_stream.empty() || o.collection.empty() ||
        o.changes_collection.empty() || o.changes_collection == o.collection) {
        error = "settings \"stream\", \"group\", \"dead_letter_stream\", \"collection\" and \"changes_collection\" must not be empty, and the two collections must differ";
        return std::nullopt;
    }
    if (!o.unique_key.empty() && o.unique_key != "streamId" && o.unique_key != "roomId,streamId") {
        error = "setting \"unique_key\" must be \"streamId\" or \"roomId,streamId\" (got \"" + o.unique_key + "\")";
        return std::nullopt;
    }
    if (o.user_ids != "objectid" && o.user_ids != "any") {
        error = "setting \"user_ids\" must be \"objectid\" or \"any\" (got \"" + o.user_ids + "\")";
        return std::nullopt;
    }
    o.any_user_id = o.user_ids == "any";
    if (o.consumer_lock_dir.empty()) {
        error = "setting \"consumer_lock_dir\" must not be empty";
        return std::nullopt;
    }
    for (const std::string &entry : o.room_retention) {
        size_t eq = entry.find('=');
        const std::string room = entry.substr(0, eq), secs = eq == std::string::npos ? "" : entry.substr(eq + 1);
        char *end = nullptr;
        long long n = secs.empty() ? -1 : std::strtoll(secs.c_str(), &end, 10);
        if (!plugin::valid_room(room) || n < 0 || (end && *end) || n > 100000000000LL || o.room_retention_s.count(room)) {
            error = "setting \"room_retention\": each entry is \"<room>=<seconds>\", a room once (got \"" +
                    entry.substr(0, 80) + "\")";
            return std::nullopt;
        }
        o.room_retention_s[room] = n;
    }
    for (const std::string &t : o.upload_types) {
        auto known = sniffable_types();
        if (std::find(known.begin(), known.end(), t) == known.end()) {
            error = "setting \"upload_types\": \"" + t.substr(0, 64) +
                    "\" is not a type uploads can recognise (image/png, image/jpeg, image/gif, image/webp, "
                    "application/pdf, text/plain)";
            return std::nullopt;
        }
    }
    if (o.uploads && !o.history) {
        error = "setting \"uploads\" needs \"history\" (its token checks)";
        return std::nullopt;
    }
    if (o.upload_bucket.empty() || o.upload_bucket.size() > 64 ||
        o.upload_bucket.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
            std::string::npos) {
        error = "setting \"upload_bucket\" must be 1-64 characters of A-Z a-z 0-9 _ -";
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
    if (o.consumer_reap_idle_ms != 0 && o.consumer_reap_idle_ms <= o.block_ms + o.redis_timeout_ms) {
        error = "setting \"consumer_reap_idle_ms\" must be 0 or more than \"block_ms\" + \"redis_timeout_ms\" (a live "
                "consumer blocked in XREADGROUP looks idle that long)";
        return std::nullopt;
    }
    if (o.history_default_limit > o.history_max_limit) {
        error = "setting \"history_default_limit\" must not exceed \"history_max_limit\"";
        return std::nullopt;
    }
    return parsed;
}

std::string mongo_url_with_timeouts(const std::string &url, int64_t timeout_ms, int64_t op_timeout_ms) {
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
    put("socketTimeoutMS", op_timeout_ms);
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
