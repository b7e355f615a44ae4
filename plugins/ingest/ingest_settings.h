// The ingest plugin's settings: declared once as a table of fields of
// IngestSettings (which also generates the README's table), parsed and
// checked at init, then read-only.
#pragma once

#include <aurora/aurora.h>
#include <jwt.h>

#include <cstdint>
#include <optional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "settings.h"

namespace aurora::ingest {

std::span<const plugin::Setting> ingest_settings();

struct IngestSettings {
    std::string stream, group, dead_letter_stream, collection, changes_collection, consumer_name, consumer_lock_dir;
    std::string unique_key;  // "" (the mode's), "streamId" or "roomId,streamId"
    std::string user_ids;    // "objectid" (the seed's) or "any"
    bool any_user_id = false;  // from user_ids
    int64_t consumer_reap_idle_ms = 3600000;
    int workers = 2;
    int batch = 500;
    int64_t block_ms = 5000;
    int64_t claim_idle_ms = 30000;
    int64_t claim_interval_ms = 5000;
    int64_t max_deliveries = 5;
    int64_t backoff_initial_ms = 100;
    int64_t backoff_max_ms = 5000;
    int64_t mongo_timeout_ms = 2000;
    int64_t mongo_op_timeout_ms = 10000;
    int64_t redis_timeout_ms = 2000;
    int64_t stats_interval_ms = 1000;
    // Retention (retention.h): the stream, and the stored messages.
    int64_t stream_keep_s = 0;           // 0: ingest does not trim the stream
    int64_t retention_s = 0;             // 0: messages are kept
    std::vector<std::string> room_retention;  // "room=seconds" (0: kept)
    std::map<std::string, int64_t> room_retention_s;  // parsed from room_retention
    int64_t retention_interval_s = 60;
    bool secondary_indexes = true;
    bool history = true;
    int history_workers = 2;
    bool search = false;  // search_tokens.h: words indexed per message, `search` requests
    int64_t history_default_limit = 50;
    int64_t history_max_limit = 100;
    size_t history_max_queue = 1024;
    // Uploads (upload_service.h): POST /api/uploads into GridFS.
    bool uploads = false;
    std::string upload_bucket = "uploads";
    int64_t upload_max_bytes = 10 * 1024 * 1024;
    int64_t upload_quota_bytes = 100 * 1024 * 1024;  // per user; 0: none
    std::vector<std::string> upload_types;
    int64_t upload_attach_s = 86400;
    int64_t upload_timeout_ms = 60000;
    int upload_workers = 2;
    size_t upload_max_queue = 64;
    std::string jwt_algorithm;
    jwt_alg_t jwt_alg = JWT_ALG_HS256;  // from jwt_algorithm
    int64_t leeway_s = 30;
};

// nullopt with `error` (a message naming the setting).
std::optional<IngestSettings> load_settings(aurora_str config_json, std::string &error);

// `url` with the driver timeouts this plugin relies on (server selection,
// connect, heartbeat, and every operation's socket deadline) appended unless
// the URL already sets them: without them an insert during an outage would
// wait 30 s, a restarted server would be noticed only at the driver's 10 s
// heartbeat, and an operation on a server that accepts but never answers
// (a frozen process) would wait forever.
std::string mongo_url_with_timeouts(const std::string &url, int64_t timeout_ms, int64_t op_timeout_ms);

}  // namespace aurora::ingest
