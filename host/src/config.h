// The host configuration: parsed from JSON, validated key by key (unknown
// keys, wrong types and out-of-range values are errors naming the key).
// docs/configuration.md is the reference; keep the two in step.
#pragma once

#include <aurora/common.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "log.h"

namespace aurora::host {

struct PluginConfig {
    std::string name;         // instance name, [a-z0-9_]+, unique
    std::string path;         // resolved .so path
    std::string config_json;  // the plugin's "config" object as JSON text
};

// A token bucket's parameters: `per_s` tokens a second, at most `burst` saved.
struct Budget {
    double per_s = 0;
    double burst = 0;
};

struct Limits {
    size_t max_frame_bytes = 64 * 1024;
    size_t hard_max_frame_bytes = 1024 * 1024;
    size_t send_queue_max_bytes = 4 * 1024 * 1024;
    size_t send_queue_max_frames = 4096;
    size_t max_rooms_per_conn = 32;
    size_t http_max_body_bytes = 64 * 1024;
    uint32_t http_body_timeout_ms = 10000;  // the whole body, from the end of the head
    size_t max_connections = 50000;         // WebSocket + HTTP connections of this process
    size_t max_pending_per_conn = 64;       // messages of one connection held PENDING by plugins
    Budget frames{100, 200};                // every frame of a connection, whatever its type
    // Frames of these types also spend from their own bucket (config
    // limits.frame_budgets adds or replaces entries; per_s 0 = no own bucket).
    std::vector<std::pair<std::string, Budget>> frame_budgets{
        {"join", {5, 20}},     {"leave", {5, 20}}, {"resume", {2, 10}}, {"history", {2, 10}},
        {"presence", {2, 10}}, {"read", {10, 30}}, {"typing", {5, 10}}, {"edit", {5, 20}},
        {"delete", {5, 20}},   {"react", {10, 30}}, {"receipts", {2, 10}}, {"search", {2, 10}},
    };
};

// permessage-deflate (RFC 7692; ws_deflate.h), the config's "compression".
struct CompressionSettings {
    bool enabled = true;
    size_t min_bytes = 128;                // smaller payloads go uncompressed
    int level = 1;                         // zlib level, 1 (fast) .. 9
    int mem_level = 8;                     // zlib memLevel, 1 .. 9
    bool client_context_takeover = false;  // let clients keep their context (costs an inflater per connection)
};

struct HostConfig {
    std::string listen_host = "127.0.0.1";
    int listen_port = 8080;
    int workers = 1;
    std::string web_root;  // empty: no static files
    std::string plugin_path;
    std::string redis_url = "redis://127.0.0.1:6379/0";
    std::string redis_mode = "single";       // "sentinel" or "cluster" (docs/scaling.md)
    std::vector<std::string> redis_sentinels;  // host:port, sentinel mode
    std::string redis_master_name;           // sentinel mode
    std::vector<std::string> redis_nodes;    // host:port, cluster mode: the seed nodes
    int redis_stream_shards = 8;             // cluster mode: chat:messages:{0..N-1}
    std::string mongo_url = "mongodb://127.0.0.1:27017/aurorachat";
    std::optional<std::string> jwt_secret;
    // Tokens from an identity provider (docs/auth.md): its keys (a JWKS or
    // PEM file, or a JWKS URL), what key-signed tokens must say, and where
    // the user's id and name are in them. Empty: unset.
    std::string jwt_keys_file, jwt_jwks_url, jwt_issuer, jwt_audience, jwt_user_id_claim, jwt_username_claim;
    int jwt_keys_refresh_s = 300;
    aurora_log_level log_level = AURORA_LOG_INFO;
    LogFormat log_format = LogFormat::Text;
    bool allow_anonymous = false;
    std::vector<std::string> trusted_proxies;  // peers whose X-Forwarded-For is believed
    Limits limits;
    CompressionSettings compression;
    int ping_interval_s = 30;
    int ping_timeout_s = 10;
    int shutdown_grace_ms = 3000;
    std::vector<PluginConfig> plugins;

    // Shared settings for host->setting(), by dotted key.
    std::map<std::string, std::string> settings() const;
};

// Parses and validates. `base_dir` resolves relative paths (the config
// file's folder; empty = current directory). On error returns nullopt and
// sets `error` to a message naming the key.
std::optional<HostConfig> parse_config(const std::string &json, const std::string &base_dir, std::string &error);

// Applies AURORA_* environment overrides to a config JSON text (used by
// aurora-host, not by the embedding API). Returns the new JSON text, or
// nullopt with `error` set.
std::optional<std::string> apply_env_overrides(const std::string &json, std::string &error);

// The default plugin folder: lib/aurora/plugins of the install this code
// runs from, found from where the aurora-host binary (bin/) or
// libaurora_host.so (lib/) lies, so that an install made with --prefix, or
// moved, loads its own plugins; the compiled-in <CMAKE_INSTALL_PREFIX>/lib/
// aurora/plugins when that folder does not exist (a build tree).
std::string default_plugin_path();

}  // namespace aurora::host
