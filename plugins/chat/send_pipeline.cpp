#include "send_pipeline.h"

#include <poll.h>

#include <algorithm>

#include "chat_protocol.h"
#include "chat_scripts.h"
#include "json.h"

namespace aurora::chat {

namespace {

using Clock = std::chrono::steady_clock;

bool is_error(const redisReply *r) { return !r || r->type == REDIS_REPLY_ERROR; }

// An idle request/reply connection that is readable has been closed by the
// server (Redis sends nothing unasked): Redis restarted while this thread had
// nothing to do. Found before a batch is written, the batch goes to a new
// connection instead of failing (`unavailable` to every sender in it, no
// snapshot for a join).
bool closed_while_idle(plugin::RedisConnection &redis) {
    if (!redis.connected() || redis.pending() > 0) return false;
    pollfd p{redis.raw()->fd, POLLIN | POLLRDHUP, 0};
    return poll(&p, 1, 0) > 0 && p.revents != 0;
}

std::string reply_text(const redisReply *r) {
    if (!r) return "no reply";
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR)
        return std::string(r->str, r->len);
    if (r->type == REDIS_REPLY_INTEGER) return std::to_string(r->integer);
    return "unexpected reply";
}

}  // namespace

SendPipeline::SendPipeline(const ChatContext &ctx, ReadWorker &reads)
    : ctx_(ctx),
      reads_(reads),
      redis_(ctx.redis_url, std::chrono::milliseconds(ctx.s.redis_timeout_ms)),
      events_(std::chrono::milliseconds(ctx.s.presence_coalesce_ms)),
      jobs_(ctx.host) {}

void SendPipeline::submit(SendJob job) { jobs_.post(std::move(job)); }

void SendPipeline::run(aurora_worker *w) {
    auto next_refresh = Clock::now();
    std::vector<SendJob> batch;
    {
        plugin::JobQueue<SendJob>::Attach attach(jobs_, w);
        while (!ctx_.host->worker_should_stop(w)) {
            batch.clear();
            if (jobs_.take(batch) > 0) process(batch);
            publish_presence(Clock::now());
            if (Clock::now() >= next_refresh) {
                refresh_presence();
                next_refresh = Clock::now() + std::chrono::seconds(ctx_.s.presence_refresh_s);
            }
            if (jobs_.empty()) {
                auto until = std::min(next_refresh, events_.next_due().value_or(next_refresh));
                auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
                ctx_.host->worker_wait(w, static_cast<uint32_t>(std::clamp<int64_t>(wait.count(), 1, 1000)));
            }
        }
        // Shutting down: a PENDING message must always be resumed. Presence
        // events still held are dropped, as the members' leaves are: the
        // entries go from the sorted set below, and snapshots tell the truth.
        batch.clear();
        jobs_.take(batch);
        for (SendJob &job : batch) fail(job, "unavailable", "the server is shutting down");
    }
    std::string err;
    if (redis_.ensure(err)) {  // best effort: take this process's members out of presence now
        for (const auto &[key, m] : members_) redis_.append({"ZREM", ctx_.presence_key(key.second), m});
        for (size_t i = redis_.pending(); i > 0; --i) redis_.read(err);
    }
}

bool SendPipeline::load_scripts(std::string &err) {
    plugin::RedisReply a = redis_.command({"SCRIPT", "LOAD", kSendScript}, err);
    plugin::RedisReply b = a ? redis_.command({"SCRIPT", "LOAD", kReadScript}, err) : nullptr;
    if (is_error(a.get()) || is_error(b.get())) {
        if (a && is_error(a.get())) err = reply_text(a.get());
        return false;
    }
    send_sha_ = reply_text(a.get());
    read_sha_ = reply_text(b.get());
    return true;
}

std::string SendPipeline::member(const SendJob &job) const {
    return presence_member_json(job.user_id, job.username, ctx_.replica + ":" + std::to_string(job.conn));
}

// Appends the job's commands; returns how many replies they produce.
size_t SendPipeline::append(const SendJob &job) {
    switch (job.kind) {
    case SendJob::Kind::Message: {
        EnvelopeParts env = message_envelope(job.room, job.username, job.user_id, job.text, job.ref_json);
        std::vector<std::string> argv{"EVALSHA", send_sha_, job.ref_value.empty() ? "1" : "2", ctx_.s.stream};
        if (!job.ref_value.empty()) argv.push_back("chat:ref:" + job.user_id + ":" + job.ref_value);
        for (std::string a : {ctx_.channel(job.room), job.room, job.user_id, job.text, job.username, job.ref_value,
                              env.prefix, env.middle, env.suffix, std::to_string(ctx_.s.dedup_window_s),
                              std::to_string(ctx_.s.stream_maxlen)})
            argv.push_back(std::move(a));
        redis_.append(argv);
        return 1;
    }
    case SendJob::Kind::Typing: {
        std::string payload = "{\"type\":\"typing\",\"room\":" + quoted(job.room) + ",\"user\":" + quoted(job.username) +
                              ",\"userId\":" + quoted(job.user_id) + "}";
        redis_.append({"PUBLISH", ctx_.channel(job.room), payload});
        return 1;
    }
    case SendJob::Kind::Read:
        redis_.append({"EVALSHA", read_sha_, "1", "chat:read:" + job.user_id, job.room, job.id});
        return 1;
    case SendJob::Kind::PresenceJoin: {
        const std::string expiry =
            std::to_string(ctx_.host->now_wall_ms() + static_cast<uint64_t>(ctx_.s.presence_ttl_s) * 1000);
        std::string m = member(job);
        members_[{job.conn, job.room}] = m;
        redis_.append({"ZADD", ctx_.presence_key(job.room), expiry, m});
        // Events in the order of the changes, so a join and a leave of one
        // batch net out right; the snapshot waits for the ZADD (complete()).
        if (ctx_.s.presence_events) events_.change(job.conn, job.room, true, job.user_id, job.username, Clock::now());
        return 1;
    }
    case SendJob::Kind::PresenceLeave: {
        auto it = members_.find({job.conn, job.room});
        if (it == members_.end()) return 0;
        redis_.append({"ZREM", ctx_.presence_key(job.room), it->second});
        members_.erase(it);
        if (ctx_.s.presence_events) events_.change(job.conn, job.room, false, job.user_id, job.username, Clock::now());
        return 1;
    }
    }
    return 0;
}

void SendPipeline::finish(aurora_msg *msg, const std::string &reply) {
    if (!msg) return;
    if (reply.empty()) {
        ctx_.host->msg_resume(msg, AURORA_DROP);
        return;
    }
    ctx_.host->msg_set_reply(msg, plugin::str(reply));
    ctx_.host->msg_resume(msg, AURORA_REPLY);
}

void SendPipeline::fail(SendJob &job, const char *code, const std::string &why) {
    if (job.kind == SendJob::Kind::Message) ctx_.host->metric_add(ctx_.m.send_errors, 1);
    if (job.msg) {
        const std::string message = job.kind == SendJob::Kind::Message ? "message not sent: " + why : why;
        ctx_.host->msg_reply_error(job.msg, code, message.c_str());
        ctx_.host->msg_resume(job.msg, AURORA_REPLY);
        job.msg = nullptr;
    }
}

void SendPipeline::complete(SendJob &job, std::vector<plugin::RedisReply> &r) {
    switch (job.kind) {
    case SendJob::Kind::Message: {
        const redisReply *rep = r[0].get();
        if (is_error(rep) || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
            ctx_.log(AURORA_LOG_ERROR, "send script failed: " + reply_text(rep));
            fail(job, "internal", "the message could not be stored");
            return;
        }
        bool fresh = rep->element[0]->integer == 1;
        std::string id = reply_text(rep->element[1]);
        ctx_.host->metric_add(fresh ? ctx_.m.sent : ctx_.m.duplicates, 1);
        std::chrono::duration<double> took = Clock::now() - job.queued;
        ctx_.host->metric_observe(ctx_.m.send_seconds, took.count());
        if (job.ref_json.empty()) {
            finish(job.msg, {});  // the seed's plain message: no ack, the broadcast is the answer
        } else {
            std::string extra = "\"id\":" + quoted(id) + ",\"room\":" + quoted(job.room);
            if (!fresh) extra += ",\"duplicate\":true";
            finish(job.msg, ack_json(job.ref_json, extra));
        }
        job.msg = nullptr;
        return;
    }
    case SendJob::Kind::Read: {
        if (is_error(r[0].get())) return fail(job, "internal", "read marker not stored: " + reply_text(r[0].get()));
        finish(job.msg, ack_json(job.ref_json, "\"room\":" + quoted(job.room) + ",\"read\":" + quoted(reply_text(r[0].get()))));
        job.msg = nullptr;
        return;
    }
    case SendJob::Kind::PresenceJoin:
        if (!is_error(r[0].get())) reads_.join_snapshot(job.conn, job.room);  // now that it is in the set
        return;
    case SendJob::Kind::Typing:
    case SendJob::Kind::PresenceLeave: return;
    }
}

void SendPipeline::process(std::vector<SendJob> &batch, bool retried) {
    std::string err;
    if (closed_while_idle(redis_)) redis_.reset();
    bool up = redis_.ensure(err) && ((!send_sha_.empty() && !read_sha_.empty()) || load_scripts(err));
    ctx_.host->metric_set(ctx_.m.redis_up, up ? 1 : 0);
    redis_ok_ = up;
    if (!up) {
        for (SendJob &job : batch) fail(job, "unavailable", "the message store is unavailable");
        return;
    }
    std::vector<size_t> counts;
    counts.reserve(batch.size());
    for (const SendJob &job : batch) counts.push_back(append(job));
    std::vector<SendJob> retry;
    bool broken = false;
    for (size_t i = 0; i < batch.size(); ++i) {
        std::vector<plugin::RedisReply> replies;
        for (size_t k = 0; k < counts[i] && !broken; ++k) {
            plugin::RedisReply rep = redis_.read(err);
            if (!rep) broken = true;
            replies.push_back(std::move(rep));
        }
        if (broken) {
            fail(batch[i], "unavailable", "the message store connection failed");
            continue;
        }
        const redisReply *first = replies.empty() ? nullptr : replies[0].get();
        if (!retried && first && first->type == REDIS_REPLY_ERROR &&
            std::string_view(first->str, first->len).starts_with("NOSCRIPT")) {
            send_sha_.clear();  // Redis restarted or flushed its scripts: load and try once more
            read_sha_.clear();
            retry.push_back(std::move(batch[i]));
            continue;
        }
        complete(batch[i], replies);
    }
    if (broken) {
        redis_ok_ = false;
        ctx_.host->metric_set(ctx_.m.redis_up, 0);
        ctx_.log(AURORA_LOG_WARN, "redis: " + err);
    }
    if (!retry.empty()) {
        if (load_scripts(err)) {
            process(retry, true);
        } else {
            for (SendJob &job : retry) fail(job, "unavailable", "scripts could not be loaded");
        }
    }
}

void SendPipeline::publish_presence(PresenceCoalescer::Clock::time_point now) {
    uint64_t cancelled = events_.cancelled();
    std::vector<PresenceCoalescer::Event> events = events_.due(now);
    ctx_.host->metric_add(ctx_.m.presence_coalesced, static_cast<double>(events_.cancelled() - cancelled));
    if (events.empty()) return;
    // A connection found broken (idle through a Redis restart) is made again
    // and the events sent once more: a repeated presence event is harmless,
    // a lost one leaves members' lists wrong until their next snapshot.
    std::string err;
    for (int attempt = 0; attempt < 2; ++attempt) {
        if (!redis_.ensure(err)) return;  // lost, like any live event while Redis is away
        for (const auto &e : events) redis_.append({"PUBLISH", ctx_.channel(e.room), e.json});
        size_t read = 0;
        while (redis_.pending() > 0 && redis_.read(err)) ++read;
        if (read == events.size()) {
            ctx_.host->metric_add(ctx_.m.presence_events, static_cast<double>(events.size()));
            return;
        }
    }
    ctx_.log(AURORA_LOG_WARN, "presence events: " + err);
}

void SendPipeline::refresh_presence() {
    if (members_.empty()) return;
    std::string err;
    if (!redis_.ensure(err)) return;
    std::string expiry = std::to_string(ctx_.host->now_wall_ms() + static_cast<uint64_t>(ctx_.s.presence_ttl_s) * 1000);
    for (const auto &[key, m] : members_) redis_.append({"ZADD", ctx_.presence_key(key.second), expiry, m});
    for (size_t i = redis_.pending(); i > 0; --i) {
        if (!redis_.read(err)) break;
    }
}

}  // namespace aurora::chat
