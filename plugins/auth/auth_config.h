// The auth plugin's settings: declared once as a table (kAuthSettings, which
// also generates the README's table), parsed and checked at init, then
// read-only. Includes the JWT secret policy: outside dev mode a missing,
// well-known or short secret refuses start-up.
#pragma once

#include <jwt.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "password_hash.h"
#include "settings.h"

namespace aurora::auth {

constexpr size_t kMinSecretBytes = 32;

std::span<const plugin::Setting> auth_settings();

// The plugin's settings (one field per setting of the table in
// auth_config.cpp), then what load_config derives from them.
struct AuthSettings {
    bool dev_mode = false;
    std::string jwt_algorithm, password_scheme;
    int bcrypt_cost = 10, yescrypt_cost = 5;
    int64_t connection_ttl_s = 60;
    std::string secret;  // the HMAC key (the shared jwt.secret)
    jwt_alg_t alg = JWT_ALG_HS256;  // from jwt_algorithm
    int64_t token_ttl_s = 86400;
    int64_t leeway_s = 30;
    bool query_token = true;
    bool enforce_bans = true;  // plugins/common/moderation.h
    HashScheme scheme = HashScheme::Bcrypt;  // from password_scheme
    int hash_cost = 10;                      // bcrypt_cost or yescrypt_cost
    int workers = 2;
    size_t max_queue = 1024;
    size_t max_pending_per_addr = 8;
    std::string users_collection = "users";
    int64_t login_window_ms = 900000;
    int64_t login_failures_before_backoff = 5;
    int64_t login_backoff_base_ms = 1000;
    int64_t login_backoff_max_ms = 900000;
    int64_t login_max_failures_per_addr = 50;
    int64_t register_window_ms = 600000;
    int64_t register_max_per_addr = 10;
    int register_max_concurrent = 1;
    size_t register_max_queue = 64;
    int64_t max_connections_per_user = 10;
    int64_t connection_ttl_ms = 60000;  // connection_ttl_s
    std::vector<std::string> cors_origins;  // without "*"
    bool cors_any = false;  // "*" in cors_origins (dev mode only)
    std::string redis_prefix = "auth:";
};

// Why `secret` is unfit for production, or nullopt if it is fine.
std::optional<std::string> weak_secret_reason(const std::string &secret);

// Parses the plugin config and applies the secret policy. `secret` is the
// shared setting jwt.secret (config or AURORA_JWT_SECRET), empty if unset.
// `warnings` collects what dev mode lets through. nullopt with `error`.
std::optional<AuthSettings> load_config(aurora_str config_json, const std::string &secret, std::string &error,
                                      std::vector<std::string> &warnings);

}  // namespace aurora::auth
