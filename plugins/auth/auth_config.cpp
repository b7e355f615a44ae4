#include "auth_config.h"

#include <algorithm>
#include <cctype>
#include <random>
#include <set>

namespace aurora::auth {

namespace {

using plugin::Setting;

const plugin::Field<AuthSettings> kFields[] = {
    {{"dev_mode", Setting::Bool, "false",
     "development only: accept a missing/weak `jwt.secret` (a random one is generated when missing) and `*` in "
     "`cors_origins`"},
     &AuthSettings::dev_mode},
    {{"jwt_algorithm", Setting::String, "\"HS256\"",
     "the only algorithm accepted and issued: `HS256`, `HS384` or `HS512`"},
     &AuthSettings::jwt_algorithm},
    {{"token_ttl_s", Setting::Int, "86400", "lifetime of issued tokens (`exp` - `iat`), seconds", 60, 31536000},
     &AuthSettings::token_ttl_s},
    {{"leeway_s", Setting::Int, "30", "clock skew allowed when checking `exp` and `nbf`, seconds", 0, 600},
     &AuthSettings::leeway_s},
    {{"query_token", Setting::Bool, "true",
     "accept the token from `?token=` at the handshake (the seed's fallback; URLs end up in logs)"},
     &AuthSettings::query_token},
    {{"enforce_bans", Setting::Bool, "true",
     "refuse users banned through the chat plugin's server API at the handshake (403; follows chat:bans and "
     "chat:control in Redis; not in cluster mode)"},
     &AuthSettings::enforce_bans},
    {{"password_scheme", Setting::String, "\"bcrypt\"", "hash for new passwords: `bcrypt` ($2b$) or `yescrypt` ($y$)"},
     &AuthSettings::password_scheme},
    {{"bcrypt_cost", Setting::Int, "10", "bcrypt cost (log2 rounds)", 4, 31}, &AuthSettings::bcrypt_cost},
    {{"yescrypt_cost", Setting::Int, "5", "yescrypt cost", 1, 11}, &AuthSettings::yescrypt_cost},
    {{"workers", Setting::Int, "2", "worker threads for hashing, MongoDB and Redis", 1, 32}, &AuthSettings::workers},
    {{"max_queue", Setting::Int, "1024", "logins (and other short jobs) waiting for a worker before 503", 1, 1000000},
     &AuthSettings::max_queue},
    {{"max_pending_per_addr", Setting::Int, "8",
     "login and registration requests in progress per client address before 429 (0 = no limit)", 0, 1000000},
     &AuthSettings::max_pending_per_addr},
    {{"users_collection", Setting::String, "\"users\"", "collection of the users (database from `mongo.url`)"},
     &AuthSettings::users_collection},
    {{"login_window_ms", Setting::Int, "900000",
     "how long failed logins are remembered: the per-address window, and per username and address after the last "
     "failure, milliseconds",
     100, 86400000},
     &AuthSettings::login_window_ms},
    {{"login_failures_before_backoff", Setting::Int, "5",
     "failed logins for one username from one client address before each further failure makes that pair wait",
     1, 1000000},
     &AuthSettings::login_failures_before_backoff},
    {{"login_backoff_base_ms", Setting::Int, "1000",
     "the first wait; it doubles with each further failure of the pair, milliseconds", 1, 3600000},
     &AuthSettings::login_backoff_base_ms},
    {{"login_backoff_max_ms", Setting::Int, "900000", "the longest wait, milliseconds", 1, 86400000},
     &AuthSettings::login_backoff_max_ms},
    {{"login_max_failures_per_addr", Setting::Int, "50",
     "failed logins per client address per window, all usernames, before 429 (0 = no limit)", 0, 1e9},
     &AuthSettings::login_max_failures_per_addr},
    {{"register_window_ms", Setting::Int, "600000", "registration throttling window, milliseconds", 100, 86400000},
     &AuthSettings::register_window_ms},
    {{"register_max_per_addr", Setting::Int, "10",
     "registrations per client address per window before 429 (0 = no limit)", 0, 1e9},
     &AuthSettings::register_max_per_addr},
    {{"register_max_concurrent", Setting::Int, "1",
     "registrations hashing at once; below `workers` (unless it is 1), so logins always find a free worker", 1, 32},
     &AuthSettings::register_max_concurrent},
    {{"register_max_queue", Setting::Int, "64", "registrations waiting for a worker before 503", 1, 1000000},
     &AuthSettings::register_max_queue},
    {{"max_connections_per_user", Setting::Int, "10",
     "concurrent WebSocket connections per user across replicas (0 = no limit)", 0, 1e9},
     &AuthSettings::max_connections_per_user},
    {{"connection_ttl_s", Setting::Int, "60",
     "a connection's entry in Redis expires after this unless refreshed (every third of it)", 3, 3600},
     &AuthSettings::connection_ttl_s},
    {{"cors_origins", Setting::StringList, "[]",
     "origins allowed to call the HTTP routes from a browser (exact match); `*` only in dev mode"},
     &AuthSettings::cors_origins},
    {{"redis_prefix", Setting::String, "\"auth:\"", "prefix of every Redis key of this plugin"},
     &AuthSettings::redis_prefix},
};

std::string lower(std::string s) {
    for (char &c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string random_secret() {
    std::random_device rd;
    static const char kHex[] = "0123456789abcdef";
    std::string s;
    for (int i = 0; i < 64; ++i) s += kHex[rd() & 15];
    return s;
}

}  // namespace

std::span<const plugin::Setting> auth_settings() {
    static const std::vector<Setting> table = plugin::settings_of<AuthSettings>(kFields);
    return table;
}

std::optional<std::string> weak_secret_reason(const std::string &secret) {
    if (secret.empty()) return "jwt.secret is not set (config \"jwt\": {\"secret\"} or AURORA_JWT_SECRET)";
    static const char *const kKnown[] = {
        "change-me", "changeme", "change_me", "secret", "jwt-secret", "jwt_secret", "supersecret", "dev-secret",
        "default", "password", "your-secret", "your_jwt_secret", "mysecret",
        "use-strong-random-secret-minimum-32-characters",  // the seed's own example (§12.1)
    };
    const std::string l = lower(secret);
    for (const char *k : kKnown)
        if (l == k) return "jwt.secret is a well-known default value";
    if (secret.size() < kMinSecretBytes)
        return "jwt.secret is " + std::to_string(secret.size()) + " bytes; at least " +
               std::to_string(kMinSecretBytes) + " are required";
    if (std::set<char>(secret.begin(), secret.end()).size() < 8)
        return "jwt.secret has fewer than 8 distinct characters";
    return std::nullopt;
}

std::optional<AuthSettings> load_config(aurora_str config_json, const std::string &secret, std::string &error,
                                      std::vector<std::string> &warnings) {
    std::optional<AuthSettings> parsed = plugin::parse_settings(config_json, kFields, error);
    if (!parsed) return std::nullopt;
    AuthSettings &c = *parsed;
    const std::string &alg = c.jwt_algorithm;
    if (alg == "HS256") c.alg = JWT_ALG_HS256;
    else if (alg == "HS384") c.alg = JWT_ALG_HS384;
    else if (alg == "HS512") c.alg = JWT_ALG_HS512;
    else {
        error = "setting \"jwt_algorithm\" must be HS256, HS384 or HS512 (got \"" + alg + "\")";
        return std::nullopt;
    }
    if (c.password_scheme == "bcrypt") {
        c.scheme = HashScheme::Bcrypt;
        c.hash_cost = c.bcrypt_cost;
    } else if (c.password_scheme == "yescrypt") {
        c.scheme = HashScheme::Yescrypt;
        c.hash_cost = c.yescrypt_cost;
    } else {
        error = "setting \"password_scheme\" must be bcrypt or yescrypt (got \"" + c.password_scheme + "\")";
        return std::nullopt;
    }
    if (c.users_collection.empty() || c.users_collection.find('$') != std::string::npos) {
        error = "setting \"users_collection\" must be a non-empty name without '$'";
        return std::nullopt;
    }
    if (c.login_backoff_max_ms < c.login_backoff_base_ms) {
        error = "setting \"login_backoff_max_ms\" must be at least \"login_backoff_base_ms\"";
        return std::nullopt;
    }
    if (c.register_max_concurrent > std::max(1, c.workers - 1)) {
        error = "setting \"register_max_concurrent\" (" + std::to_string(c.register_max_concurrent) +
                ") must be below \"workers\" (" + std::to_string(c.workers) +
                "), or 1: a registration flood must leave a worker for logins";
        return std::nullopt;
    }
    c.connection_ttl_ms = c.connection_ttl_s * 1000;

    std::vector<std::string> origins = std::move(c.cors_origins);
    c.cors_origins.clear();
    for (const std::string &o : origins) {
        if (o == "*") {
            if (!c.dev_mode) {
                error = "setting \"cors_origins\" may contain \"*\" only with \"dev_mode\": true";
                return std::nullopt;
            }
            c.cors_any = true;
            continue;
        }
        if (o.empty() || o.find_first_of(" \r\n,") != std::string::npos || o.back() == '/') {
            error = "setting \"cors_origins\": \"" + o + "\" is not an origin (scheme://host[:port], no path)";
            return std::nullopt;
        }
        c.cors_origins.push_back(o);
    }

    if (auto weak = weak_secret_reason(secret)) {
        if (!c.dev_mode) {
            error = *weak + " (set \"dev_mode\": true in the auth plugin's config to allow it in development)";
            return std::nullopt;
        }
        if (secret.empty()) {
            c.secret = random_secret();
            warnings.push_back("dev mode: jwt.secret is not set; using a random secret (tokens die with the process)");
        } else {
            c.secret = secret;
            warnings.push_back("dev mode: " + *weak);
        }
    } else {
        c.secret = secret;
    }
    if (c.dev_mode) warnings.push_back("dev mode is on: never use it in production");
    return parsed;
}

}  // namespace aurora::auth
