#include "limit_checker.h"

#include <algorithm>
#include <unordered_set>

#include "json.h"
#include "replies.h"

namespace aurora::ratelimit {

namespace {

constexpr uint64_t kNsPerMs = 1000000;
constexpr uint32_t kIdleMs = 1000;  // an idle thread checks Redis this often (keeps /ready honest)

const char *limit_label(LimitName n) {
    switch (n) {
    case LimitName::Room: return "room";
    case LimitName::User: return "user";
    case LimitName::Control: return "control";
    default: return "connect";
    }
}

// One Redis I/O (connect, or a reply) may take half the budget: a check that
// arrives while a batch is stuck waits at most that half, then gets its own.
std::chrono::milliseconds io_timeout(const RateLimitSettings &cfg) {
    return std::chrono::milliseconds(std::max<int64_t>(5, cfg.redis_timeout_ms / 2));
}

}  // namespace

LimitChecker::LimitChecker(const aurora_host_api *host, aurora_plugin_ctx *self, const RateLimitSettings &cfg,
                           const Metrics &metrics, ConnTable &conns, plugin::RedisUrl url)
    : host_(host), self_(self), cfg_(cfg), m_(metrics), conns_(conns), jobs_(host),
      redis_(std::move(url), io_timeout(cfg)) {}

aurora_status LimitChecker::start() { return host_->spawn(self_, "ratelimit", &LimitChecker::thread_main, this); }

void LimitChecker::submit(Check check) {
    check.enqueued_ns = host_->now_monotonic_ns();
    jobs_.post(std::move(check));
}

void LimitChecker::thread_main(aurora_worker *w, void *self) { static_cast<LimitChecker *>(self)->run(w); }

void LimitChecker::run(aurora_worker *w) {
    plugin::JobQueue<Check>::Attach attach(jobs_, w);
    std::string err;
    if (connect(err)) set_up(true, "");
    else host_->log_msg(self_, AURORA_LOG_WARN, "redis unreachable at start: %s (retrying)", err.c_str());

    std::vector<Check> batch;
    while (!host_->worker_should_stop(w)) {
        batch.clear();
        batch.swap(carry_);
        size_t room = static_cast<size_t>(cfg_.max_batch) > batch.size() ? cfg_.max_batch - batch.size() : 0;
        jobs_.take(batch, room);
        if (batch.empty()) {
            // Quiet: ping Redis once per kIdleMs without traffic, so /ready
            // and the reconnection do not wait for the next message.
            if (host_->now_monotonic_ns() - last_io_ns_ >= kIdleMs * kNsPerMs) idle_probe();
            if (host_->worker_wait(w, kIdleMs)) break;
            continue;
        }
        try {
            process(batch);
        } catch (const std::exception &e) {  // bad_alloc: never let it end the thread (and the process)
            host_->log_msg(self_, AURORA_LOG_ERROR, "limiter batch failed: %s", e.what());
        }
    }
    // Stopping: the host is closing every connection. A PENDING message must
    // still be resumed exactly once.
    jobs_.take(carry_);
    for (Check &c : carry_)
        if (c.msg) host_->msg_resume(c.msg, AURORA_DROP);
    carry_.clear();
}

void LimitChecker::process(std::vector<Check> &batch) {
    const uint64_t now = host_->now_monotonic_ns();
    const uint64_t max_wait = static_cast<uint64_t>(io_timeout(cfg_).count()) * kNsPerMs;
    std::unordered_set<aurora_conn_id> admitting;  // connections with an admission check in this batch
    std::vector<Check> send;
    send.reserve(batch.size());
    for (Check &c : batch) {
        if (c.kind == Kind::Message && conns_.refused(c.conn)) {
            host_->msg_resume(c.msg, AURORA_DROP);  // its connection was refused: never delivered
            continue;
        }
        if (c.kind == Kind::Message && admitting.contains(c.conn)) {
            carry_.push_back(std::move(c));  // after the admission verdict, in order
            continue;
        }
        if (c.kind == Kind::Connect) admitting.insert(c.conn);
        if (!c.limits.empty() && now - c.enqueued_ns > max_wait) {
            // Waited behind a round trip that hung: do not start another.
            fail(c, "waited longer than redis_timeout_ms/2 for the limiter thread");
            continue;
        }
        send.push_back(std::move(c));
    }
    if (!send.empty()) round_trip(send);
}

bool LimitChecker::connect(std::string &error) {
    bool fresh = !redis_.connected();
    if (!redis_.ensure(error)) return false;
    if (!script_.ensure_loaded(redis_, fresh, error)) {
        redis_.reset();
        return false;
    }
    return true;
}

void LimitChecker::round_trip(std::vector<Check> &checks) {
    const bool any_io = std::any_of(checks.begin(), checks.end(), [](const Check &c) { return !c.limits.empty(); });
    if (any_io) last_io_ns_ = host_->now_monotonic_ns();
    std::string err;
    if (any_io && !connect(err)) {
        set_up(false, err);
        for (Check &c : checks) {
            if (c.limits.empty()) finish(c, Verdict{true, 0, -1});
            else fail(c, err);
        }
        return;
    }
    size_t sent = 0;
    for (const Check &c : checks) {
        if (c.limits.empty()) continue;
        redis_.append(script_.evalsha(c.limits));
        ++sent;
    }
    if (sent) host_->metric_observe(m_.batch, static_cast<double>(sent));

    // Replies come back in order; checks without limits (messages only held
    // for an admission verdict) are finished in their place, so a
    // connection's messages keep their order.
    std::vector<Check *> retry;  // NOSCRIPT (someone ran SCRIPT FLUSH): reload and run them again
    bool io_ok = true;
    for (Check &c : checks) {
        if (c.limits.empty()) {
            finish(c, Verdict{true, 0, -1});
            continue;
        }
        plugin::RedisReply r = io_ok ? redis_.read(err) : nullptr;
        if (!r) {  // I/O error or timeout: the connection is gone, so are the other replies
            if (io_ok) set_up(false, err);
            io_ok = false;
            fail(c, err);
            continue;
        }
        Verdict v;
        switch (decode(r.get(), v, err)) {
        case ReplyKind::Ok: finish(c, v); break;
        case ReplyKind::NoScript: retry.push_back(&c); break;
        case ReplyKind::Error: fail(c, err); break;
        }
    }
    if (io_ok && sent) set_up(true, "");
    if (retry.empty()) return;
    script_.forget();
    if (!redis_.connected() || !script_.ensure_loaded(redis_, true, err)) {
        if (err.empty()) err = "redis connection lost";
        for (Check *c : retry) fail(*c, err);
        return;
    }
    for (Check *c : retry) redis_.append(script_.evalsha(c->limits));
    io_ok = true;
    for (Check *c : retry) {
        plugin::RedisReply r = io_ok ? redis_.read(err) : nullptr;
        Verdict v;
        if (!r) io_ok = false;
        if (r && decode(r.get(), v, err) == ReplyKind::Ok) finish(*c, v);
        else fail(*c, err);
    }
}

void LimitChecker::finish(Check &c, const Verdict &v) {
    if (c.limits.empty()) {  // held only for the admission verdict, which let it through
        host_->msg_resume(c.msg, AURORA_CONTINUE);
        return;
    }
    host_->metric_observe(m_.latency, static_cast<double>(host_->now_monotonic_ns() - c.enqueued_ns) / 1e9);
    if (v.allowed) {
        m_.allow(c.kind);
        if (c.kind == Kind::Connect) conns_.admit(c.conn);
        if (c.msg) host_->msg_resume(c.msg, AURORA_CONTINUE);
        return;
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
        return;
    }
    std::string reply = rate_limited_reply(v.retry_after_ms, limit_label(which), c.ref_json);
    host_->msg_set_reply(c.msg, plugin::str(reply));
    host_->msg_resume(c.msg, AURORA_REPLY);
    const int64_t now_ms = static_cast<int64_t>(host_->now_monotonic_ns() / kNsPerMs);
    if (conns_.abuse_hit(c.conn, cfg_.abuse, now_ms)) {
        m_.add(m_.abuse_closes);
        host_->log_conn(self_, AURORA_LOG_INFO, c.conn, "closing: more than %lld refusals in %lld ms",
                        static_cast<long long>(cfg_.abuse.max), static_cast<long long>(cfg_.abuse.window_ms));
        host_->close(self_, c.conn, 1008, AURORA_STR_LIT("rate limit: repeated abuse"));
    }
}

void LimitChecker::fail(Check &c, const std::string &why) {
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
        if (c.msg) host_->msg_resume(c.msg, AURORA_CONTINUE);
        return;
    }
    m_.add(m_.error_denied);
    if (c.kind == Kind::Connect) {
        conns_.mark_refused(c.conn);
        host_->close(self_, c.conn, 1013, AURORA_STR_LIT("rate limiter unavailable; try again later"));
        return;
    }
    host_->msg_reply_error(c.msg, "rate_limit_unavailable", "the rate limiter cannot reach its store; try again later");
    host_->msg_resume(c.msg, AURORA_REPLY);
}

void LimitChecker::set_up(bool up, const std::string &why) {
    bool was = up_.exchange(up);
    if (was == up) return;
    if (up) host_->log_msg(self_, AURORA_LOG_INFO, "redis reachable; script loaded (sha %s)", script_.sha().c_str());
    else host_->log_msg(self_, AURORA_LOG_WARN, "redis unreachable: %s", why.c_str());
}

void LimitChecker::idle_probe() {
    last_io_ns_ = host_->now_monotonic_ns();
    std::string err;
    if (!connect(err)) return set_up(false, err);
    plugin::RedisReply r = redis_.command({"PING"}, err);
    set_up(r != nullptr, err);
}

}  // namespace aurora::ratelimit
