#include "limit_checker.h"

#include <memory>

#include "json.h"
#include "replies.h"

namespace aurora::ratelimit {

namespace {

constexpr uint64_t kNsPerMs = 1000000;
constexpr uint64_t kIdleMs = 1000;  // without traffic, Redis is pinged this often (keeps /ready honest)

const char *limit_label(LimitName n) {
    switch (n) {
    case LimitName::Room: return "room";
    case LimitName::User: return "user";
    case LimitName::Control: return "control";
    default: return "connect";
    }
}

plugin::PluginHandle handle(const aurora_host_api *host, aurora_plugin_ctx *self) {
    plugin::PluginHandle h;
    h.host = host;
    h.self = self;
    return h;
}

std::vector<std::string_view> views(const std::vector<std::string> &argv) {
    return std::vector<std::string_view>(argv.begin(), argv.end());
}

}  // namespace

LimitChecker::LimitChecker(const aurora_host_api *host, aurora_plugin_ctx *self, const RateLimitSettings &cfg,
                           const Metrics &metrics, ConnTable &conns, plugin::RedisUrl url)
    : host_(host), self_(self), cfg_(cfg), m_(metrics), conns_(conns),
      redis_(handle(host, self), std::move(url), std::chrono::milliseconds(cfg.redis_timeout_ms), kMaxPending,
             "ratelimit") {}

LimitChecker::~LimitChecker() {
    if (probe_timer_) host_->timer_stop(probe_timer_);
}

aurora_status LimitChecker::start() {
    redis_.on_node_up([this](plugin::AsyncRedis &node) { load_script(node); });
    redis_.on_node_down([this](plugin::AsyncRedis &node) {
        if (!redis_.cluster()) sha_.clear();  // the same SHA1 on every node: kept while another answers
        host_->log_msg(self_, AURORA_LOG_WARN, "redis %s:%d unreachable", node.server().host.c_str(), node.server().port);
    });
    probe_timer_ = host_->timer_start(self_, kIdleMs, kIdleMs, [](void *p) { static_cast<LimitChecker *>(p)->probe(); },
                                      this);
    return probe_timer_ && redis_.start() ? AURORA_OK : AURORA_ERR;
}

void LimitChecker::load_script(plugin::AsyncRedis &node) {
    node.command({"SCRIPT", "LOAD", sliding_window_lua()}, [this](const redisReply *r) {
        if (!r || r->type != REDIS_REPLY_STRING) {
            if (r) host_->log_msg(self_, AURORA_LOG_ERROR, "SCRIPT LOAD: %s", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
            return;
        }
        sha_.assign(r->str, r->len);
        host_->log_msg(self_, AURORA_LOG_INFO, "redis reachable; script loaded (sha %s)", sha_.c_str());
    });
}

void LimitChecker::probe() {
    uint64_t now = host_->now_monotonic_ns();
    if (now - last_io_ns_ < kIdleMs * kNsPerMs) return;
    last_io_ns_ = now;
    redis_.each_up([](plugin::AsyncRedis &node) {  // no answer within the deadline drops the connection
        node.command({"PING"}, [](const redisReply *) {});
    });
}

aurora_verdict LimitChecker::submit(Check check) {
    check.enqueued_ns = host_->now_monotonic_ns();
    if (check.kind == Kind::Message && conns_.refused(check.conn)) return AURORA_DROP;  // never delivered
    auto c = std::make_shared<Check>(std::move(check));
    if (c->limits.empty()) {
        // Held only for its connection's admission: a PING queued behind the
        // admission check answers after it.
        bool queued = redis_.command(c->slot, {"PING"}, [this, c](const redisReply *) {
            conclude(*c, conns_.refused(c->conn) ? AURORA_DROP : AURORA_CONTINUE, false);
        });
        if (queued) return AURORA_PENDING;
        return conns_.refused(c->conn) ? AURORA_DROP : AURORA_CONTINUE;  // the admission was decided already
    }
    if (!redis_up(c->slot)) return fail(*c, "redis unreachable", true);
    last_io_ns_ = c->enqueued_ns;
    std::vector<std::string> argv = evalsha_argv(sha_, c->limits);
    if (!redis_.command(c->slot, views(argv), [this, c](const redisReply *r) { on_reply(c, r); }))
        return fail(*c, "too many checks waiting for redis", true);
    // batch_checks: how many checks this loop iteration writes together.
    if (batch_++ == 0 && host_->call_before_sleep(self_, observe_batch, this) != AURORA_OK) batch_ = 0;
    return c->kind == Kind::Message ? AURORA_PENDING : AURORA_DROP;
}

void LimitChecker::observe_batch(void *p) {
    auto *self = static_cast<LimitChecker *>(p);
    self->host_->metric_observe(self->m_.batch, static_cast<double>(self->batch_));
    self->batch_ = 0;
}

void LimitChecker::on_reply(const CheckPtr &c, const redisReply *r) {
    if (!r) {
        fail(*c, "no reply within redis_timeout_ms, or the connection failed", false);
        return;
    }
    Verdict v;
    std::string err;
    switch (decode(r, v, err)) {
    case ReplyKind::Ok: finish(*c, v, false); return;
    case ReplyKind::Error: fail(*c, err, false); return;
    case ReplyKind::NoScript:
        if (c->retried) {
            fail(*c, err, false);
            return;
        }
        // Someone ran SCRIPT FLUSH (or Redis restarted under us): this check
        // goes with the script's text, and the handle is loaded again.
        c->retried = true;
        std::vector<std::string> argv = eval_argv(c->limits);
        redis_.command(c->slot, {"SCRIPT", "LOAD", sliding_window_lua()}, [](const redisReply *) {});
        if (!redis_.command(c->slot, views(argv), [this, c](const redisReply *again) { on_reply(c, again); }))
            fail(*c, "redis unreachable", false);
        return;
    }
}

aurora_verdict LimitChecker::conclude(Check &c, aurora_verdict v, bool in_hook) {
    if (!c.msg) return AURORA_DROP;
    if (in_hook) return v;
    host_->msg_resume(c.msg, v);
    c.msg = nullptr;
    return AURORA_PENDING;
}

// Closing from inside on_connect waits until the hook has returned.
void LimitChecker::close_later(aurora_conn_id conn, uint16_t code, const char *reason) {
    struct Close {
        const aurora_host_api *host;
        aurora_plugin_ctx *self;
        aurora_conn_id conn;
        uint16_t code;
        const char *reason;  // a literal
    };
    auto call = std::make_unique<Close>(Close{host_, self_, conn, code, reason});
    auto run = [](void *p) {
        std::unique_ptr<Close> k(static_cast<Close *>(p));
        k->host->close(k->self, k->conn, k->code, aurora_str{k->reason, std::char_traits<char>::length(k->reason)});
    };
    if (host_->call_on_service(self_, run, call.get()) == AURORA_OK) call.release();
}

aurora_verdict LimitChecker::finish(Check &c, const Verdict &v, bool in_hook) {
    host_->metric_observe(m_.latency, static_cast<double>(host_->now_monotonic_ns() - c.enqueued_ns) / 1e9);
    if (c.kind == Kind::Message && conns_.refused(c.conn)) return conclude(c, AURORA_DROP, in_hook);
    if (v.allowed) {
        m_.allow(c.kind);
        if (c.kind == Kind::Connect) conns_.admit(c.conn);
        return conclude(c, AURORA_CONTINUE, in_hook);
    }
    LimitName which = v.limit_index >= 0 && static_cast<size_t>(v.limit_index) < c.names.size()
                          ? c.names[static_cast<size_t>(v.limit_index)]
                          : c.names.front();
    m_.limit(which);
    if (c.kind == Kind::Connect) {
        const int64_t now_ms = static_cast<int64_t>(host_->now_monotonic_ns() / kNsPerMs);
        conns_.mark_refused(c.conn);
        conns_.block_address(c.addr, now_ms + v.retry_after_ms);
        m_.add(m_.connect_closes);
        host_->log_conn(self_, AURORA_LOG_INFO, c.conn, "closing: more than %lld connections from %s in %lld ms",
                        static_cast<long long>(cfg_.connect.max), c.addr.c_str(),
                        static_cast<long long>(cfg_.connect.window_ms));
        host_->close(self_, c.conn, 1008, AURORA_STR_LIT("too many connection attempts from this address"));
        return AURORA_DROP;
    }
    std::string reply = rate_limited_reply(v.retry_after_ms, limit_label(which), c.ref_json);
    host_->msg_set_reply(c.msg, plugin::str(reply));
    aurora_verdict out = conclude(c, AURORA_REPLY, in_hook);
    const int64_t now_ms = static_cast<int64_t>(host_->now_monotonic_ns() / kNsPerMs);
    if (conns_.abuse_hit(c.conn, cfg_.abuse, now_ms)) {
        m_.add(m_.abuse_closes);
        host_->log_conn(self_, AURORA_LOG_INFO, c.conn, "closing: more than %lld refusals in %lld ms",
                        static_cast<long long>(cfg_.abuse.max), static_cast<long long>(cfg_.abuse.window_ms));
        host_->close(self_, c.conn, 1008, AURORA_STR_LIT("rate limit: repeated abuse"));
    }
    return out;
}

aurora_verdict LimitChecker::fail(Check &c, const std::string &why, bool in_hook) {
    m_.add(m_.redis_errors);
    const uint64_t now = host_->now_monotonic_ns();
    if (now - last_error_log_ns_ > 5000 * kNsPerMs) {  // at most one line per 5 s, not one per message
        last_error_log_ns_ = now;
        host_->log_msg(self_, AURORA_LOG_WARN, "rate-limit check failed (%s); applying on_redis_error%s", why.c_str(),
                       c.kind == Kind::Connect ? "_connect" : "");
    }
    host_->metric_observe(m_.latency, static_cast<double>(now - c.enqueued_ns) / 1e9);
    OnRedisError policy = c.kind == Kind::Connect ? cfg_.on_redis_error_connect : cfg_.on_redis_error;
    if (policy == OnRedisError::Allow) {
        m_.add(m_.error_allowed);
        if (c.kind == Kind::Connect) conns_.admit(c.conn);
        return conclude(c, AURORA_CONTINUE, in_hook);
    }
    m_.add(m_.error_denied);
    if (c.kind == Kind::Connect) {
        conns_.mark_refused(c.conn);
        if (in_hook) close_later(c.conn, 1013, "rate limiter unavailable; try again later");
        else host_->close(self_, c.conn, 1013, AURORA_STR_LIT("rate limiter unavailable; try again later"));
        return AURORA_DROP;
    }
    host_->msg_reply_error(c.msg, "rate_limit_unavailable", "the rate limiter cannot reach its store; try again later");
    return conclude(c, AURORA_REPLY, in_hook);
}

}  // namespace aurora::ratelimit
