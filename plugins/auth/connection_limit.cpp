// The per-user connection cap, enforced just after the upgrade: the
// authenticate hook must answer at once and cannot ask Redis, so on_connect
// hands the check to a worker, which closes the connection (1008) when the
// user is over the cap. docs/auth.md discusses the trade-off.
#include "auth_state.h"
#include "json.h"

namespace aurora::auth {

namespace {

std::string member_of(const AuthPlugin &st, aurora_conn_id id) { return st.replica_id + ":" + std::to_string(id); }

void release_entry(AuthPlugin &st, WorkerContext &ctx, const std::string &user_id, aurora_conn_id id) {
    std::string err;
    if (st.cap->release(ctx.redis, user_id, member_of(st, id), err)) st.backend_ok();
    else st.backend_failed("redis (connection cap release; the entry will expire)", err);
}

void admit(AuthPlugin &st, WorkerContext &ctx, const std::string &user_id, aurora_conn_id id) {
    std::string err;
    std::optional<int64_t> n = st.cap->admit(ctx.redis, user_id, member_of(st, id), err);
    if (!n) {
        // Fail open: a Redis outage must not lock every user out.
        st.conns.forget(id);
        st.backend_failed("redis (connection cap; connections are not counted)", err);
        return;
    }
    st.backend_ok();
    switch (st.conns.admitted(id, *n <= st.cap->cap())) {
    case ConnectionRegistry::AfterAdmit::Keep: break;
    case ConnectionRegistry::AfterAdmit::Release: release_entry(st, ctx, user_id, id); break;
    case ConnectionRegistry::AfterAdmit::Close:
        st.host->metric_add(st.m.cap_closed, 1);
        st.host->log_conn(st.self, AURORA_LOG_INFO, id, "user %s is over %lld connections: closing", user_id.c_str(),
                          static_cast<long long>(st.cap->cap()));
        st.host->close(st.self, id, 1008, AURORA_STR_LIT("too many connections"));
        break;
    }
}

}  // namespace

void connection_opened(AuthPlugin &st, aurora_conn *conn) {
    if (!st.cap) return;
    std::string user(plugin::view(st.host->conn_user_id(conn)));
    if (user.empty()) return;  // anonymous: nothing to count
    const aurora_conn_id id = st.host->conn_id(conn);
    st.conns.opened(id, user);
    AuthPlugin *sp = &st;
    if (!st.pool->post([sp, user, id](WorkerContext &ctx) { admit(*sp, ctx, user, id); })) {
        st.conns.forget(id);
        st.host->log_conn(st.self, AURORA_LOG_WARN, id, "worker queue full: connection not counted");
    }
}

void connection_closed(AuthPlugin &st, aurora_conn *conn) {
    if (!st.cap) return;
    const aurora_conn_id id = st.host->conn_id(conn);
    std::string user;
    if (!st.conns.closed(id, user)) return;
    AuthPlugin *sp = &st;
    // If the queue is full the entry expires after connection_ttl_s.
    st.pool->post([sp, user, id](WorkerContext &ctx) { release_entry(*sp, ctx, user, id); });
}

void maintenance_tick(AuthPlugin &st, WorkerContext &ctx) {
    if (ctx.stopping) return;
    if (!st.indexes_ready.load()) {
        std::string err;
        if (st.users->ensure_indexes(err)) {
            st.indexes_ready.store(true);
            st.host->log_msg(st.self, AURORA_LOG_INFO, "unique index on %s.username is in place",
                             st.cfg.users_collection.c_str());
        } else {
            st.backend_failed("mongodb (index creation; retrying)", err);
        }
    }
    if (!st.cap) return;
    // Refresh every third of the ttl, so an entry outlives two missed ticks.
    static thread_local std::chrono::steady_clock::time_point next_refresh{};
    auto now = std::chrono::steady_clock::now();
    if (now < next_refresh) return;
    next_refresh = now + std::chrono::milliseconds(st.cap->ttl_ms() / 3);
    std::vector<std::pair<std::string, std::string>> entries;
    for (auto &[user, id] : st.conns.counted()) entries.emplace_back(user, member_of(st, id));
    std::string err;
    if (st.cap->refresh(ctx.redis, entries, err)) st.backend_ok();
    else st.backend_failed("redis (connection cap refresh)", err);
}

}  // namespace aurora::auth
