// The auth plugin: descriptor, init/shutdown and the hook trampolines that
// turn the C ABI into calls on AuthPlugin (no exception crosses the ABI).
// docs/auth.md is the reader's guide; README.md lists the settings.
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <exception>
#include <random>

#include "auth_state.h"
#include "json.h"
#include "plugin_handle.h"
#include "password_hash.h"

namespace aurora::auth {

void AuthPlugin::backend_failed(const char *what, const std::string &error) {
    host->metric_add(m.backend_errors, 1);
    if (backend_up.exchange(false)) log(AURORA_LOG_WARN, "%s failed: %s", what, error.c_str());
}

namespace {

std::string random_hex(size_t n) {
    std::random_device rd;
    static const char kHex[] = "0123456789abcdef";
    std::string s;
    for (size_t i = 0; i < n; ++i) s += kHex[rd() & 15];
    return s;
}

void register_metrics(AuthPlugin &st) {
    const aurora_host_api *h = st.host;
    aurora_plugin_ctx *s = st.self;
    st.m.register_ok = h->metric_counter(s, "registrations_total", "Registrations", "result=\"created\"");
    st.m.register_conflict = h->metric_counter(s, "registrations_total", "Registrations", "result=\"exists\"");
    st.m.register_throttled = h->metric_counter(s, "registrations_total", "Registrations", "result=\"throttled\"");
    st.m.too_many_pending = h->metric_counter(s, "requests_in_progress_refused_total",
                                              "Logins and registrations refused: too many in progress from the address",
                                              nullptr);
    st.m.login_ok = h->metric_counter(s, "logins_total", "Login attempts", "result=\"ok\"");
    st.m.login_failed = h->metric_counter(s, "logins_total", "Login attempts", "result=\"bad_credentials\"");
    st.m.login_throttled = h->metric_counter(s, "logins_total", "Login attempts", "result=\"throttled\"");
    st.m.handshake_accepted = h->metric_counter(s, "handshakes_total", "Token checks at the upgrade", "result=\"accepted\"");
    st.m.handshake_rejected = h->metric_counter(s, "handshakes_total", "Token checks at the upgrade", "result=\"rejected\"");
    st.m.cap_closed = h->metric_counter(s, "connection_cap_closes_total", "Connections closed over the per-user cap", nullptr);
    st.m.backend_errors = h->metric_counter(s, "backend_errors_total", "Failed Redis/MongoDB operations", nullptr);
    st.m.hash_seconds = h->metric_histogram(s, "password_hash_seconds", "Time to hash or verify a password", nullptr,
                                            nullptr, 0);
}

aurora_status init_state(AuthPlugin &st) {
    std::string error;
    std::vector<std::string> warnings;
    std::string secret(plugin::view(st.host->setting(st.self, "jwt.secret")));
    std::optional<AuthSettings> cfg = load_config(st.host->config_json(st.self), secret, error, warnings);
    if (!cfg) {
        st.log(AURORA_LOG_ERROR, "config: %s", error.c_str());
        return AURORA_ERR_INVALID;
    }
    st.cfg = std::move(*cfg);
    for (const std::string &w : warnings) st.log(AURORA_LOG_WARN, "%s", w.c_str());

    std::string mongo_url(plugin::view(st.host->setting(st.self, "mongo.url")));
    if (mongo_url.empty()) mongo_url = "mongodb://127.0.0.1:27017/aurorachat";
    st.mongo = plugin::MongoPool::create(mongo_url, error, st.host, st.self);
    if (!st.mongo) {
        st.log(AURORA_LOG_ERROR, "%s", error.c_str());
        return AURORA_ERR_INVALID;
    }
    std::optional<plugin::RedisUrl> redis_url = plugin::redis_target(st.host, st.self, {}, error, /*cluster_ok=*/true);
    if (!redis_url) {
        st.log(AURORA_LOG_ERROR, "%s", error.c_str());
        return AURORA_ERR_INVALID;
    }
    st.users = std::make_unique<UserStore>(*st.mongo, st.cfg.users_collection);
    st.throttle = std::make_unique<LoginThrottle>(
        ThrottlePolicy{st.cfg.redis_prefix, st.cfg.login_window_ms, st.cfg.login_failures_before_backoff,
                       st.cfg.login_backoff_base_ms, st.cfg.login_backoff_max_ms, st.cfg.login_max_failures_per_addr});
    st.register_throttle = std::make_unique<RegisterThrottle>(st.cfg.redis_prefix, st.cfg.register_window_ms,
                                                              st.cfg.register_max_per_addr);
    st.pending = std::make_unique<InFlightLimit>(st.cfg.max_pending_per_addr);
    if (st.cfg.max_connections_per_user > 0)
        st.cap = std::make_unique<ConnectionCap>(st.cfg.redis_prefix, st.cfg.max_connections_per_user,
                                                 st.cfg.connection_ttl_ms);
    st.replica_id = std::to_string(getpid()) + "-" + random_hex(12);
    if (st.cfg.enforce_bans && redis_url->cluster()) {
        st.log(AURORA_LOG_INFO, "enforce_bans: not in cluster mode (the server API that bans is not either)");
    } else if (st.cfg.enforce_bans) {
        st.bans = std::make_unique<plugin::Moderation>(st, *redis_url, std::chrono::milliseconds(2000),
                                                       plugin::Moderation::kBanChannel);
        if (!st.bans->start()) return AURORA_ERR_INVALID;
    }
    st.trust = plugin::TokenTrust::create(st.host, st.self, st.cfg.secret, st.cfg.alg, error);
    if (!st.trust) {
        st.log(AURORA_LOG_ERROR, "config: %s", error.c_str());
        return AURORA_ERR_INVALID;
    }

    // Main thread, once: the hash verified for unknown usernames.
    std::optional<std::string> dummy = hash_password(random_hex(32), st.cfg.scheme, st.cfg.hash_cost);
    if (!dummy) {
        st.log(AURORA_LOG_ERROR, "libxcrypt cannot hash with %s cost %d",
               st.cfg.scheme == HashScheme::Bcrypt ? "bcrypt" : "yescrypt", st.cfg.hash_cost);
        return AURORA_ERR_INVALID;
    }
    st.dummy_hash = std::move(*dummy);

    register_metrics(st);
    aurora_status rc = register_routes(st);
    if (rc != AURORA_OK) return rc;

    AuthPlugin *sp = &st;
    const LaneLimits lanes{st.cfg.max_queue, st.cfg.register_max_queue,
                           static_cast<size_t>(st.cfg.register_max_concurrent)};
    st.pool = std::make_unique<WorkerPool>(st.host, st.self, *redis_url, lanes,
                                           [sp](WorkerContext &ctx) { maintenance_tick(*sp, ctx); }, 1000);
    rc = st.pool->start(st.cfg.workers);
    if (rc != AURORA_OK) {
        st.log(AURORA_LOG_ERROR, "cannot start the workers (status %d)", static_cast<int>(rc));
        return rc;
    }
    rc = st.trust->start();
    if (rc != AURORA_OK) {
        st.log(AURORA_LOG_ERROR, "cannot start the token key refresher (status %d)", static_cast<int>(rc));
        return rc;
    }
    st.log(AURORA_LOG_INFO, "ready: %d workers (registrations on at most %d), %s, tokens %s for %llds, %s%s",
           st.cfg.workers, st.cfg.register_max_concurrent,
           st.cfg.scheme == HashScheme::Bcrypt ? "bcrypt" : "yescrypt", jwt_alg_str(st.cfg.alg),
           static_cast<long long>(st.cfg.token_ttl_s),
           st.cap ? ("at most " + std::to_string(st.cfg.max_connections_per_user) + " connections per user").c_str()
                  : "no connection cap",
           st.cfg.dev_mode ? " (DEV MODE)" : "");
    return AURORA_OK;
}

aurora_status auth_init(const aurora_host_api *host, aurora_plugin_ctx *self, void **state_out) {
    std::unique_ptr<AuthPlugin> st;
    try {
        st = std::make_unique<AuthPlugin>();
        st->host = host;
        st->self = self;
        aurora_status rc = init_state(*st);
        if (rc != AURORA_OK) {
            // Workers are started last; if some started before a later spawn
            // failed, the host joins them only after we return, so their
            // state must outlive this call: leave it (the host exits, code 2).
            if (st->pool) (void)st.release();
            return rc;
        }
        *state_out = st.release();
        return AURORA_OK;
    } catch (const std::exception &e) {
        host->log_msg(self, AURORA_LOG_ERROR, "init failed: %s", e.what());
        if (st && st->pool) (void)st.release();  // started workers hold it until the host joins them
        return AURORA_ERR;
    }
}

void auth_shutdown(void *state) {
    // The host has joined the workers: nothing else touches the state.
    std::unique_ptr<AuthPlugin> st(static_cast<AuthPlugin *>(state));
}

aurora_auth_verdict auth_authenticate(void *state, const aurora_handshake *hs, aurora_identity *identity) {
    auto &st = *static_cast<AuthPlugin *>(state);
    try {
        return authenticate_handshake(st, hs, identity);
    } catch (const std::exception &e) {
        st.log(AURORA_LOG_ERROR, "authenticate: %s", e.what());
        identity->reject_status = 503;
        identity->reject_reason = AURORA_STR_LIT("authentication unavailable");
        return AURORA_AUTH_REJECT;
    }
}

void auth_on_connect(void *state, aurora_conn *conn) {
    auto &st = *static_cast<AuthPlugin *>(state);
    try {
        connection_opened(st, conn);
    } catch (const std::exception &e) {
        st.log(AURORA_LOG_ERROR, "on_connect: %s", e.what());
    }
}

void auth_on_disconnect(void *state, aurora_conn *conn) {
    auto &st = *static_cast<AuthPlugin *>(state);
    try {
        connection_closed(st, conn);
    } catch (const std::exception &e) {
        st.log(AURORA_LOG_ERROR, "on_disconnect: %s", e.what());
    }
}

// Ready: the users collection's indexes exist, and with enforce_bans the
// bans are loaded (a banned user is never let in by a replica that has not
// read them yet).
int32_t auth_is_ready(void *state) {
    const auto &st = *static_cast<AuthPlugin *>(state);
    return st.indexes_ready.load() && (!st.bans || st.bans->ready()) ? 1 : 0;
}

const aurora_plugin kDescriptor = [] {
    aurora_plugin d = plugin::describe(
        "auth", "1.0.0", "users in MongoDB, bcrypt/yescrypt hashes, JWT login and handshake authentication");
    d.init = auth_init;
    d.shutdown = auth_shutdown;
    d.authenticate = auth_authenticate;
    d.on_connect = auth_on_connect;
    d.on_disconnect = auth_on_disconnect;
    d.is_ready = auth_is_ready;
    return d;
}();

}  // namespace

}  // namespace aurora::auth

extern "C" AURORA_EXPORT const aurora_plugin *aurora_plugin_entry(void) { return &aurora::auth::kDescriptor; }
