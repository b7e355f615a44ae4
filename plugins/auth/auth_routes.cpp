// POST /api/auth/register and POST /api/auth/login (seed §14.1), and their
// CORS preflights. The handlers run on the service thread: they check the
// body in memory (400 at once), take an in-progress ticket for the client
// address (429 at once when it has too many), and hand everything slow to a
// worker (logins on the Main lane, registrations on the capped Bulk lane),
// which checks the Redis throttles and answers through the deferred-reply API.
#include <chrono>
#include <memory>

#include "auth_state.h"
#include "cors.h"
#include "credentials.h"
#include "http_responder.h"
#include "json.h"
#include "jwt_issue.h"
#include "password_hash.h"

namespace aurora::auth {

namespace {

using Responder = std::shared_ptr<HttpResponder>;  // shared: std::function needs a copyable job

std::string json_object(const char *key, const char *value) {
    plugin::Json obj(cJSON_CreateObject());
    cJSON_AddStringToObject(obj.get(), key, value);
    return plugin::to_string(obj.get());
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string retry_after(int64_t wait_ms) { return "Retry-After: " + std::to_string((wait_ms + 999) / 1000) + "\r\n"; }

// ---- worker side ----

void do_register(AuthPlugin &st, WorkerContext &ctx, const Responder &res, const Credentials &c,
                 const std::string &addr) {
    if (ctx.stopping) return res->error(503, "Service unavailable");
    std::string err;
    std::optional<int64_t> wait_ms = st.register_throttle->admit(ctx.redis, addr, err);
    if (!wait_ms) {
        // Fail closed, as login does: the throttle is what keeps hashing bounded.
        st.backend_failed("redis (registration throttle)", err);
        return res->error(503, "Service unavailable");
    }
    if (*wait_ms > 0) {
        st.host->metric_add(st.m.register_throttled, 1);
        return res->error(429, "Too many registrations from this address; try again later", retry_after(*wait_ms));
    }
    if (!st.indexes_ready.load()) {
        // Without the unique index a duplicate would not be detected.
        if (!st.users->ensure_indexes(err)) {
            st.backend_failed("mongodb (index creation)", err);
            return res->error(503, "Service unavailable");
        }
        st.indexes_ready.store(true);
    }
    auto t0 = std::chrono::steady_clock::now();
    std::optional<std::string> hash = hash_password(c.password, st.cfg.scheme, st.cfg.hash_cost);
    st.host->metric_observe(st.m.hash_seconds, seconds_since(t0));
    if (!hash) {
        st.log(AURORA_LOG_ERROR, "password hashing failed (libxcrypt)");
        return res->error(500, "Internal error");
    }
    switch (st.users->insert(c.username, *hash, static_cast<int64_t>(st.host->now_wall_ms()), err)) {
    case UserStore::Insert::Created:
        st.backend_ok();
        st.host->metric_add(st.m.register_ok, 1);
        return res->reply(200, "{\"ok\":true}");
    case UserStore::Insert::Duplicate:
        st.backend_ok();
        st.host->metric_add(st.m.register_conflict, 1);
        return res->error(409, "User exists");
    case UserStore::Insert::Failed: break;
    }
    st.backend_failed("mongodb (insert user)", err);
    res->error(503, "Service unavailable");
}

void do_login(AuthPlugin &st, WorkerContext &ctx, const Responder &res, const Credentials &c,
              const std::string &addr) {
    if (ctx.stopping) return res->error(503, "Service unavailable");
    std::string err;
    std::optional<int64_t> wait_ms = st.throttle->blocked_for_ms(ctx.redis, c.username, addr, err);
    if (!wait_ms) {
        // Fail closed: throttling that stops when Redis does is no throttling.
        st.backend_failed("redis (login throttle)", err);
        return res->error(503, "Service unavailable");
    }
    if (*wait_ms > 0) {
        st.host->metric_add(st.m.login_throttled, 1);
        return res->error(429, "Too many failed logins; try again later", retry_after(*wait_ms));
    }
    std::optional<StoredUser> user = st.users->find(c.username, err);
    if (!user && !err.empty()) {
        st.backend_failed("mongodb (find user)", err);
        return res->error(503, "Service unavailable");
    }
    auto t0 = std::chrono::steady_clock::now();
    // An unknown user costs one hash too, so timing does not reveal names.
    bool good = verify_password(c.password, user ? user->password_hash : st.dummy_hash) && user.has_value();
    st.host->metric_observe(st.m.hash_seconds, seconds_since(t0));
    if (!good) {
        st.host->metric_add(st.m.login_failed, 1);
        if (!st.throttle->record_failure(ctx.redis, c.username, addr, err))
            st.backend_failed("redis (login throttle)", err);
        return res->reply(401, "");  // the seed answers 401 with an empty body
    }
    if (!st.throttle->record_success(ctx.redis, c.username, addr, err))
        st.backend_failed("redis (login throttle)", err);
    const int64_t now = static_cast<int64_t>(st.host->now_wall_ms() / 1000);
    std::optional<std::string> token =
        issue_token(st.cfg.secret, st.cfg.alg, user->id_hex, user->username, now, st.cfg.token_ttl_s);
    if (!token) {
        st.log(AURORA_LOG_ERROR, "token signing failed (libjwt)");
        return res->error(500, "Internal error");
    }
    st.backend_ok();
    st.host->metric_add(st.m.login_ok, 1);
    res->reply(200, json_object("token", token->c_str()));
}

// ---- service-thread side ----

enum class Route { Register, Login };

template <Route R>
void handle_post(void *userdata, aurora_http_req *req) {
    auto &st = *static_cast<AuthPlugin *>(userdata);
    try {
        std::string_view origin = plugin::view(st.host->http_header(req, "origin"));
        auto res = std::make_shared<HttpResponder>(st.host, req, cors_headers(st.cfg, origin));
        Credentials c = parse_credentials(plugin::view(st.host->http_body(req)));
        if (!c.ok) return res->error(c.status, c.error.c_str());
        std::string addr(plugin::view(st.host->http_remote_addr(req)));
        InFlightLimit::TicketPtr ticket = st.pending->acquire(addr);
        if (!ticket) {
            st.host->metric_add(st.m.too_many_pending, 1);
            return res->error(429, "Too many requests in progress from this address", "Retry-After: 1\r\n");
        }
        AuthPlugin *sp = &st;
        // The ticket lives as long as the job: released when the worker is done.
        auto job = [sp, res, ticket, c = std::move(c), addr = std::move(addr)](WorkerContext &ctx) {
            if constexpr (R == Route::Register) do_register(*sp, ctx, res, c, addr);
            else do_login(*sp, ctx, res, c, addr);
        };
        if (!st.pool->post(std::move(job), R == Route::Register ? Lane::Bulk : Lane::Main))
            res->error(503, "Server busy; try again", "Retry-After: 1\r\n");
    } catch (const std::exception &e) {
        // The responder (if it was made) has answered 503 in its destructor.
        st.log(AURORA_LOG_ERROR, "%s: %s", R == Route::Register ? "register" : "login", e.what());
    }
}

void handle_preflight(void *userdata, aurora_http_req *req) {
    auto &st = *static_cast<AuthPlugin *>(userdata);
    try {
        std::string_view origin = plugin::view(st.host->http_header(req, "origin"));
        HttpResponder res(st.host, req, "");
        if (!origin_allowed(st.cfg, origin)) return res.error(403, "Origin not allowed", "Vary: Origin\r\n");
        res.reply(204, "", preflight_headers(st.cfg, origin));
    } catch (const std::exception &e) {
        st.log(AURORA_LOG_ERROR, "preflight: %s", e.what());
    }
}

}  // namespace

aurora_status register_routes(AuthPlugin &st) {
    struct {
        const char *method, *path;
        aurora_http_handler fn;
    } const routes[] = {
        {"POST", "/api/auth/register", handle_post<Route::Register>},
        {"POST", "/api/auth/login", handle_post<Route::Login>},
        {"OPTIONS", "/api/auth/register", handle_preflight},
        {"OPTIONS", "/api/auth/login", handle_preflight},
    };
    for (const auto &r : routes) {
        aurora_status rc = st.host->http_route(st.self, r.method, r.path, 0, r.fn, &st);
        if (rc != AURORA_OK) {
            st.log(AURORA_LOG_ERROR, "cannot route %s %s (status %d)", r.method, r.path, static_cast<int>(rc));
            return rc;
        }
    }
    return AURORA_OK;
}

}  // namespace aurora::auth
