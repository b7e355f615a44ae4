#include "fanout_subscriber.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <memory>

#include "chat_protocol.h"
#include "json.h"

namespace aurora::chat {

namespace {

constexpr size_t kRangeChunk = 500;

std::string_view field(const redisReply *fields, std::string_view name) {
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i];
        if (k->type == REDIS_REPLY_STRING && std::string_view(k->str, k->len) == name)
            return std::string_view(fields->element[i + 1]->str, fields->element[i + 1]->len);
    }
    return {};
}

// A join that the service thread performs, in order with our broadcasts.
struct JoinCall {
    FanoutSubscriber::JoinHandler *handler;
    RoomRequest req;
    bool announce;
};

void run_join_call(void *arg) {
    std::unique_ptr<JoinCall> call(static_cast<JoinCall *>(arg));
    (*call->handler)(call->req, call->announce);
}

}  // namespace

FanoutSubscriber::FanoutSubscriber(const ChatContext &ctx, JoinHandler on_join)
    : ctx_(ctx),
      on_join_(std::move(on_join)),
      sub_(ctx.redis_url, std::chrono::milliseconds(ctx.s.redis_timeout_ms)),
      data_(ctx.redis_url, std::chrono::milliseconds(ctx.s.redis_timeout_ms)) {}

FanoutSubscriber::~FanoutSubscriber() {
    if (wake_fd_ >= 0) close(wake_fd_);
}

bool FanoutSubscriber::init(std::string &error) {
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) error = "eventfd failed";
    return wake_fd_ >= 0;
}

void FanoutSubscriber::request(RoomRequest r) {
    {
        std::lock_guard lock(mu_);
        requests_.push_back(std::move(r));
    }
    uint64_t one = 1;
    ssize_t ignored = write(wake_fd_, &one, sizeof one);
    (void)ignored;  // the counter saturating only means a wake-up is already pending
}

StreamId FanoutSubscriber::start_point(const std::string &room) const {
    // Every message with an id up to last_broadcast_ has been broadcast (to
    // whoever was in its room), every later one will be: Pub/Sub delivers in
    // publish order and the send script publishes in stream-id order, across
    // all rooms. So one position serves every room.
    (void)room;
    return std::max(last_broadcast_, tail_at_subscribe_);
}

bool FanoutSubscriber::subscribe(std::string &err) {
    if (!sub_.ensure(err)) return false;
    plugin::RedisReply r = sub_.command({"PSUBSCRIBE", ctx_.s.channel_prefix + "*"}, err);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        sub_.reset();
        if (r) err = "PSUBSCRIBE refused";
        return false;
    }
    // Subscribed first, then read the tail: every message after it reaches us.
    if (!data_.ensure(err)) {
        sub_.reset();
        return false;
    }
    plugin::RedisReply tail = data_.command({"XREVRANGE", ctx_.s.stream, "+", "-", "COUNT", "1"}, err);
    tail_at_subscribe_ = {};
    if (tail && tail->type == REDIS_REPLY_ARRAY && tail->elements == 1) {
        const redisReply *e = tail->element[0];
        if (auto id = StreamId::parse(std::string_view(e->element[0]->str, e->element[0]->len))) tail_at_subscribe_ = *id;
    }
    // Messages published while we were away were not delivered live: a
    // resume from any member now covers them (from the new tail back).
    for (auto &[key, since] : member_since_) since = std::max(since, tail_at_subscribe_);
    ready_ = true;
    ctx_.host->metric_set(ctx_.m.redis_up, 1);
    ctx_.log(AURORA_LOG_INFO, "subscribed to " + ctx_.s.channel_prefix + "*");
    return true;
}

void FanoutSubscriber::run(aurora_worker *w) {
    std::string err;
    auto backoff = std::chrono::milliseconds(100);
    while (!ctx_.host->worker_should_stop(w)) {
        if (!sub_.connected()) {
            ready_ = false;
            if (!subscribe(err)) {
                ctx_.log(AURORA_LOG_WARN, "fan-out: " + err + "; retrying");
                serve_requests();  // joins still work locally; resumes answer `unavailable`
                ctx_.host->worker_wait(w, static_cast<uint32_t>(backoff.count()));
                backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
                continue;
            }
            backoff = std::chrono::milliseconds(100);
        }
        pollfd fds[2] = {{sub_.raw()->fd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
        int n = poll(fds, 2, 200);  // bounded, so a stop request is seen within 200 ms
        if (n < 0) continue;
        if (fds[1].revents & POLLIN) {
            uint64_t v;
            ssize_t ignored = read(wake_fd_, &v, sizeof v);
            (void)ignored;
        }
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) pump_messages();
        serve_requests();
    }
    ready_ = false;
}

void FanoutSubscriber::pump_messages() {
    redisContext *c = sub_.raw();
    if (redisBufferRead(c) != REDIS_OK) {
        ctx_.log(AURORA_LOG_WARN, std::string("fan-out connection lost: ") + c->errstr);
        sub_.reset();
        ready_ = false;
        ctx_.host->metric_set(ctx_.m.redis_up, 0);
        return;
    }
    void *raw = nullptr;
    while (redisGetReplyFromReader(c, &raw) == REDIS_OK && raw) {
        plugin::RedisReply r(static_cast<redisReply *>(raw));
        raw = nullptr;
        // ["pmessage", pattern, channel, payload]
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 4 || r->element[0]->type != REDIS_REPLY_STRING ||
            std::string_view(r->element[0]->str, r->element[0]->len) != "pmessage")
            continue;
        handle(std::string(r->element[2]->str, r->element[2]->len),
               std::string(r->element[3]->str, r->element[3]->len));
    }
}

void FanoutSubscriber::handle(const std::string &channel, std::string payload) {
    if (!channel.starts_with(ctx_.s.channel_prefix)) return;
    std::string room = channel.substr(ctx_.s.channel_prefix.size());
    std::optional<StreamId> id = StreamId::parse(envelope_id(payload));
    if (auto it = catchups_.find(room); it != catchups_.end()) {
        auto &list = it->second;
        for (auto c = list.begin(); c != list.end();) {
            if (id && *id > c->watermark) {
                join_now(c->req, c->watermark, false);  // before this message: it arrives through the room
                c = list.erase(c);
            } else {
                if (!id) ctx_.host->send(ctx_.self, c->req.conn, plugin::str(payload));  // presence, typing
                ++c;  // a message it already got from the stream
            }
        }
        if (list.empty()) catchups_.erase(it);
    }
    if (id) last_broadcast_ = *id;
    ctx_.host->broadcast(ctx_.self, plugin::str(room), plugin::str(payload), 0);
    ctx_.host->metric_add(ctx_.m.fanout, 1);
}

void FanoutSubscriber::join_now(const RoomRequest &r, StreamId p0, bool announce) {
    member_since_[{r.conn, r.room}] = p0;
    auto call = std::make_unique<JoinCall>(JoinCall{&on_join_, r, announce});
    if (ctx_.host->call_on_service(ctx_.self, run_join_call, call.get()) == AURORA_OK) call.release();  // run_join_call owns it
}

void FanoutSubscriber::serve_requests() {
    std::deque<RoomRequest> batch;
    {
        std::lock_guard lock(mu_);
        batch.swap(requests_);
    }
    for (RoomRequest &r : batch) {
        switch (r.kind) {
        case RoomRequest::Kind::Join: join_now(r, start_point(r.room), !r.quiet); break;
        case RoomRequest::Kind::Resume: resume(r); break;
        case RoomRequest::Kind::Leave:
        case RoomRequest::Kind::Forget: {
            for (auto it = member_since_.begin(); it != member_since_.end();) {
                bool match = it->first.first == r.conn && (r.kind == RoomRequest::Kind::Forget || it->first.second == r.room);
                it = match ? member_since_.erase(it) : std::next(it);
            }
            for (auto it = catchups_.begin(); it != catchups_.end();) {
                if (r.kind == RoomRequest::Kind::Leave && it->first != r.room) {
                    ++it;
                    continue;
                }
                std::erase_if(it->second, [&](const Catchup &c) { return c.req.conn == r.conn; });
                it = it->second.empty() ? catchups_.erase(it) : std::next(it);
            }
            break;
        }
        }
    }
}

// Sends the room's messages with after < id (<= *upto if given) to the
// connection, in order, at most resume_max of them, scanning at most
// resume_scan_max entries. `last_seen` is the last id examined.
size_t FanoutSubscriber::send_range(const RoomRequest &r, StreamId after, const StreamId *upto, StreamId &last_seen,
                                    bool &complete) {
    std::string err;
    size_t sent = 0, scanned = 0, bytes = 0;
    complete = true;
    last_seen = after;
    std::string end = upto ? upto->str() : "+";
    while (true) {
        plugin::RedisReply rep = data_.command(
            {"XRANGE", ctx_.s.stream, "(" + last_seen.str(), end, "COUNT", std::to_string(kRangeChunk)}, err);
        if (!rep || rep->type != REDIS_REPLY_ARRAY) {
            complete = false;
            return sent;
        }
        for (size_t i = 0; i < rep->elements; ++i) {
            const redisReply *e = rep->element[i];
            std::string_view id(e->element[0]->str, e->element[0]->len);
            const redisReply *fields = e->element[1];
            if (field(fields, "roomId") == r.room) {
                std::string msg = message_json(id, r.room, field(fields, "username"), field(fields, "userId"),
                                               field(fields, "text"), {});
                if (sent == ctx_.s.resume_max || bytes + msg.size() > ctx_.s.resume_max_bytes) {
                    complete = false;  // the rest is for history
                    return sent;
                }
                bytes += msg.size();
                ctx_.host->send(ctx_.self, r.conn, plugin::str(msg));
                ++sent;
            }
            if (auto sid = StreamId::parse(id)) last_seen = *sid;
            if (++scanned >= ctx_.s.resume_scan_max) {
                complete = false;
                return sent;
            }
        }
        if (rep->elements < kRangeChunk) return sent;
    }
}

void FanoutSubscriber::resume(const RoomRequest &r) {
    ctx_.host->metric_add(ctx_.m.resumes, 1);
    std::optional<StreamId> since = StreamId::parse(r.since);
    std::string err;
    if (!since) {
        ctx_.host->send(ctx_.self, r.conn, plugin::str(error_json("bad_field", "'since' must be a stream id", r.ref_json)));
        return;
    }
    if (!ready_ || !data_.ensure(err)) {
        ctx_.host->send(ctx_.self, r.conn,
                        plugin::str(error_json("unavailable", "the message store is unavailable", r.ref_json)));
        if (!member_since_.count({r.conn, r.room})) join_now(r, start_point(r.room), false);
        return;
    }
    auto member = member_since_.find({r.conn, r.room});
    StreamId last_seen;
    bool complete = true;
    size_t sent;
    if (member != member_since_.end()) {
        StreamId p0 = member->second;  // it has had everything after p0 live
        sent = *since < p0 ? send_range(r, *since, &p0, last_seen, complete) : 0;
        if (complete) last_seen = std::max(last_seen, p0);
    } else {
        sent = send_range(r, *since, nullptr, last_seen, complete);
        // Joins right before the first live message after what it got. If
        // the range was cut short, it joins now: the gap is for history.
        if (complete) {
            catchups_[r.room].push_back(Catchup{r, last_seen});
        } else {
            join_now(r, start_point(r.room), false);
        }
    }
    ctx_.host->metric_add(ctx_.m.resumed_messages, static_cast<double>(sent));
    std::string done = "{\"type\":\"resumed\",\"room\":" + quoted(r.room) + ",\"count\":" + std::to_string(sent) +
                       ",\"complete\":" + (complete ? "true" : "false") + ",\"last_id\":" + quoted(last_seen.str());
    if (!r.ref_json.empty()) done += ",\"ref\":" + r.ref_json;
    done += "}";
    ctx_.host->send(ctx_.self, r.conn, plugin::str(done));
}

}  // namespace aurora::chat
