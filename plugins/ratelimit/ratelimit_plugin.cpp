// ratelimit: the hooks. Decides which limits a frame or a connection is
// subject to, checks the per-connection control budget in memory, and hands
// every shared-budget check to the limit checker (limit_checker.cpp: Redis
// on the host's loop) as a PENDING message. docs/ratelimit.md describes the behaviour; README.md
// lists the settings.
#include <aurora/aurora.h>

#include <algorithm>
#include <memory>
#include <new>
#include <random>
#include <string>

#include "cluster_slots.h"
#include "conn_table.h"
#include "json.h"
#include "limit_checker.h"
#include "plugin_handle.h"
#include "ratelimit_metrics.h"
#include "ratelimit_settings.h"
#include "replies.h"

namespace aurora::ratelimit {
namespace {

using plugin::view;

// Thread contract: built by init (main thread); `cfg`, `metrics`, `instance`
// are read-only afterwards; `conns` and `checker` are the service thread's.
struct RateLimitPlugin {
    const aurora_host_api *host = nullptr;
    aurora_plugin_ctx *self = nullptr;
    RateLimitSettings cfg;
    Metrics metrics;
    ConnTable conns;
    std::string instance;  // random, names anonymous per-connection keys uniquely across replicas
    std::unique_ptr<LimitChecker> checker;
};

bool listed(const std::vector<std::string> &types, aurora_str type) {
    return std::find(types.begin(), types.end(), view(type)) != types.end();
}

int64_t now_ms(const RateLimitPlugin &st) { return static_cast<int64_t>(st.host->now_monotonic_ns() / 1000000); }

std::string random_instance() {
    std::random_device rd;
    static const char hex[] = "0123456789abcdef";
    std::string out(12, '0');
    for (char &c : out) c = hex[rd() % 16];
    return out;
}

// The user part of the keys: the authenticated id, else (anonymous) the
// client address or this connection, per `anonymous_key`.
std::string user_key(const RateLimitPlugin &st, const aurora_conn *conn) {
    aurora_str id = st.host->conn_user_id(conn);
    if (id.len) return std::string(view(id));
    if (st.cfg.anonymous_key == AnonymousKey::Address)
        return "anon-" + std::string(view(st.host->conn_remote_addr(conn)));
    return "anon-" + st.instance + "-" + std::to_string(st.host->conn_id(conn));
}

// {"room", "ref"} of a counted frame. The room: the frame's "room", else the
// connection's current room (ConnTable::current_room), else default_room.
// The ref: as the host parsed it (msg_ref).
void read_frame(RateLimitPlugin &st, aurora_conn_id conn, aurora_msg *msg, std::string &room, std::string &ref_json) {
    plugin::Json frame = plugin::parse_json(st.host->msg_payload(msg));
    const char *r = frame ? plugin::get_string(frame.get(), "room") : nullptr;
    if (r && *r) room = r;
    else if (room = st.conns.current_room(conn); room.empty()) room = st.cfg.default_room;
    aurora_str ref = st.host->msg_ref(msg);
    if (ref.ptr) ref_json.assign(ref.ptr, ref.len);
}

aurora_verdict reply_now(const RateLimitPlugin &st, aurora_msg *msg, const std::string &reply) {
    if (st.host->msg_set_reply(msg, plugin::str(reply)) != AURORA_OK) return AURORA_DROP;
    return AURORA_REPLY;
}

aurora_verdict check_control(RateLimitPlugin &st, aurora_conn *conn, aurora_msg *msg) {
    st.metrics.check(Kind::Control);
    const aurora_conn_id id = st.host->conn_id(conn);
    int64_t wait = st.conns.control_hit(id, st.cfg.control, now_ms(st));
    if (wait == 0) {
        st.metrics.allow(Kind::Control);
        return AURORA_CONTINUE;
    }
    st.metrics.limit(LimitName::Control);
    std::string room, ref;
    read_frame(st, id, msg, room, ref);
    aurora_verdict v = reply_now(st, msg, rate_limited_reply(wait, "control", ref));
    if (st.conns.abuse_hit(id, st.cfg.abuse, now_ms(st))) {
        st.metrics.add(st.metrics.abuse_closes);
        st.host->log_conn(st.self, AURORA_LOG_INFO, id, "closing: more than %lld refusals in %lld ms",
                          static_cast<long long>(st.cfg.abuse.max), static_cast<long long>(st.cfg.abuse.window_ms));
        st.host->close(st.self, id, 1008, AURORA_STR_LIT("rate limit: repeated abuse"));
    }
    return v;
}

aurora_verdict check_message(RateLimitPlugin &st, aurora_conn *conn, aurora_msg *msg) {
    st.metrics.check(Kind::Message);
    Check c;
    c.kind = Kind::Message;
    c.msg = msg;
    c.conn = st.host->conn_id(conn);
    std::string room;
    read_frame(st, c.conn, msg, room, c.ref_json);
    // Cluster mode: the user's keys share the hash tag {user}, so that one
    // script call checks them on one master (docs/scaling.md).
    const std::string user = st.checker->cluster() ? "{" + user_key(st, conn) + "}" : user_key(st, conn);
    if (st.cfg.room.on()) {
        c.limits.push_back({st.cfg.key_prefix + ":" + user + ":" + room, st.cfg.room});  // the seed's key shape
        c.names.push_back(LimitName::Room);
    }
    if (st.cfg.user.on()) {
        c.limits.push_back({st.cfg.key_prefix + "-user:" + user, st.cfg.user});
        c.names.push_back(LimitName::User);
    }
    // Cluster mode: its keys' slot; or, held only for its connection's
    // admission, the admission key's (its PING queues behind that check).
    if (st.checker->cluster())
        c.slot = plugin::key_slot(c.limits.empty()
                                      ? st.cfg.key_prefix + "-addr:" + std::string(view(st.host->conn_remote_addr(conn)))
                                      : c.limits.front().key);
    return st.checker->submit(std::move(c));
}

// ---- hooks ----------------------------------------------------------------

aurora_status rl_init(const aurora_host_api *host, aurora_plugin_ctx *self, void **state_out) try {
    auto st = std::make_unique<RateLimitPlugin>();
    st->host = host;
    st->self = self;
    std::string err;
    auto cfg = parse_config(host->config_json(self), view(host->setting(self, "redis.url")), err);
    if (!cfg) {
        host->log_msg(self, AURORA_LOG_ERROR, "config: %s", err.c_str());
        return AURORA_ERR_INVALID;
    }
    st->cfg = std::move(*cfg);
    auto url = plugin::redis_target(host, self, st->cfg.own_redis ? st->cfg.redis_url : std::string(), err,
                                    /*cluster_ok=*/true);
    if (!url) {
        host->log_msg(self, AURORA_LOG_ERROR, "config: %s (\"%s\")", err.c_str(), st->cfg.redis_url.c_str());
        return AURORA_ERR_INVALID;
    }
    if (!st->metrics.register_all(host, self)) {
        host->log_msg(self, AURORA_LOG_ERROR, "could not register the metrics");
        return AURORA_ERR;
    }
    st->instance = random_instance();
    st->checker = std::make_unique<LimitChecker>(host, self, st->cfg, st->metrics, st->conns, std::move(*url));
    if (aurora_status rc = st->checker->start(); rc != AURORA_OK) {
        host->log_msg(self, AURORA_LOG_ERROR, "could not start the limit checker (status %d; it needs ABI 1.2)",
                      static_cast<int>(rc));
        return rc;
    }
    const RateLimitSettings &c = st->cfg;
    host->log_msg(self, AURORA_LOG_INFO,
                  "ready: room %lld/%lld ms, user %lld/%lld ms, control %lld/%lld ms, connect %lld/%lld ms "
                  "(0 = off); on_redis_error %s, timeout %lld ms",
                  static_cast<long long>(c.room.max), static_cast<long long>(c.room.window_ms),
                  static_cast<long long>(c.user.max), static_cast<long long>(c.user.window_ms),
                  static_cast<long long>(c.control.max), static_cast<long long>(c.control.window_ms),
                  static_cast<long long>(c.connect.max), static_cast<long long>(c.connect.window_ms),
                  c.on_redis_error == OnRedisError::Allow ? "allow" : "deny",
                  static_cast<long long>(c.redis_timeout_ms));
    *state_out = st.release();
    return AURORA_OK;
} catch (const std::exception &e) {
    host->log_msg(self, AURORA_LOG_ERROR, "init failed: %s", e.what());
    return AURORA_ERR;
}

// The service loop has ended: no callback of the checker runs any more.
void rl_shutdown(void *state) { delete static_cast<RateLimitPlugin *>(state); }

// Local pre-check: an address the shared check refused recently is turned
// away at the upgrade with 429, without Redis I/O. Effective only when this
// plugin comes before the plugin that ACCEPTs (docs/ratelimit.md).
aurora_auth_verdict rl_authenticate(void *state, const aurora_handshake *hs, aurora_identity *identity) try {
    auto &st = *static_cast<RateLimitPlugin *>(state);
    if (!st.cfg.connect.on()) return AURORA_AUTH_ABSTAIN;
    if (!st.conns.address_blocked(std::string(view(st.host->hs_remote_addr(hs))), now_ms(st)))
        return AURORA_AUTH_ABSTAIN;
    st.metrics.check(Kind::Connect);
    st.metrics.limit(LimitName::Connect);
    identity->reject_status = 429;
    identity->reject_reason = AURORA_STR_LIT("too many connection attempts from this address");
    return AURORA_AUTH_REJECT;
} catch (const std::exception &) {
    return AURORA_AUTH_ABSTAIN;  // nothing escapes a hook; the shared check still runs at connect
}

void rl_on_connect(void *state, aurora_conn *conn) try {
    auto &st = *static_cast<RateLimitPlugin *>(state);
    const aurora_conn_id id = st.host->conn_id(conn);
    st.conns.add(id);
    if (!st.cfg.connect.on()) return;
    st.metrics.check(Kind::Connect);
    Check c;
    c.kind = Kind::Connect;
    c.conn = id;
    c.addr = std::string(view(st.host->conn_remote_addr(conn)));
    c.limits.push_back({st.cfg.key_prefix + "-addr:" + c.addr, st.cfg.connect});
    c.names.push_back(LimitName::Connect);
    if (st.checker->cluster()) c.slot = plugin::key_slot(c.limits.front().key);
    st.conns.set_admission_pending(id);
    st.checker->submit(std::move(c));
} catch (const std::bad_alloc &) {
    // Out of memory: the connection goes unchecked rather than the process down.
}

void rl_on_disconnect(void *state, aurora_conn *conn) try {
    auto &st = *static_cast<RateLimitPlugin *>(state);
    st.conns.remove(st.host->conn_id(conn));
} catch (const std::exception &) {
}

aurora_verdict rl_on_join(void *state, aurora_conn *conn, aurora_str room) {
    auto &st = *static_cast<RateLimitPlugin *>(state);
    try {
        st.conns.joined(st.host->conn_id(conn), view(room));
    } catch (const std::bad_alloc &) {
        // Not remembered: frames without "room" count against default_room.
    }
    return AURORA_CONTINUE;  // admission to rooms is not this plugin's business
}

void rl_on_leave(void *state, aurora_conn *conn, aurora_str room) {
    auto &st = *static_cast<RateLimitPlugin *>(state);
    try {
        st.conns.left(st.host->conn_id(conn), view(room));
    } catch (const std::bad_alloc &) {
    }
}

// A frame of a connection whose admission is still being decided waits
// behind that verdict (dropped if the connection is refused).
aurora_verdict hold_for_admission(RateLimitPlugin &st, aurora_conn *conn, aurora_msg *msg) {
    Check c;
    c.kind = Kind::Message;
    c.msg = msg;
    c.conn = st.host->conn_id(conn);
    return st.checker->submit(std::move(c));
}

aurora_verdict rl_on_message(void *state, aurora_conn *conn, aurora_msg *msg) {
    auto &st = *static_cast<RateLimitPlugin *>(state);
    try {
        aurora_str type = st.host->msg_type(msg);
        if (listed(st.cfg.message_types, type) && (st.cfg.room.on() || st.cfg.user.on()))
            return check_message(st, conn, msg);
        aurora_verdict v = AURORA_CONTINUE;
        if (listed(st.cfg.control_types, type) && st.cfg.control.on()) v = check_control(st, conn, msg);
        if (v != AURORA_CONTINUE || !st.cfg.connect.on()) return v;
        switch (st.conns.admission(st.host->conn_id(conn))) {
        case ConnTable::Admission::Pending: return hold_for_admission(st, conn, msg);
        // Refused, its close on the way: nothing of it passes meanwhile (a
        // counted message is dropped by the checker for the same reason).
        case ConnTable::Admission::Refused: return AURORA_DROP;
        case ConnTable::Admission::Admitted: break;
        }
        return v;
    } catch (const std::bad_alloc &) {
        st.host->log_conn(st.self, AURORA_LOG_ERROR, st.host->conn_id(conn), "out of memory; message dropped");
        return AURORA_DROP;
    }
}

int32_t rl_is_ready(void *state) { return static_cast<RateLimitPlugin *>(state)->checker->ready() ? 1 : 0; }

const aurora_plugin kDescriptor = [] {
    aurora_plugin d = plugin::describe(
        "ratelimit", "1.0.0",
        "sliding-window limits shared through Redis: per user per room, per user, per connection, per address");
    d.init = rl_init;
    d.shutdown = rl_shutdown;
    d.authenticate = rl_authenticate;
    d.on_connect = rl_on_connect;
    d.on_disconnect = rl_on_disconnect;
    d.on_join = rl_on_join;
    d.on_leave = rl_on_leave;
    d.on_message = rl_on_message;
    d.is_ready = rl_is_ready;
    return d;
}();

}  // namespace
}  // namespace aurora::ratelimit

extern "C" AURORA_EXPORT const aurora_plugin *aurora_plugin_entry(void) { return &aurora::ratelimit::kDescriptor; }
