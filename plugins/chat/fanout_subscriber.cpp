#include "fanout_subscriber.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <optional>

#include "chat_protocol.h"
#include "json.h"

namespace aurora::chat {

namespace {

// A join that the service thread performs, in order with our broadcasts.
struct JoinCall {
    FanoutSubscriber::JoinHandler *handler;
    RoomRequest req;
    StreamId p0;
    bool announce;
};

void run_join_call(void *arg) {
    std::unique_ptr<JoinCall> call(static_cast<JoinCall *>(arg));
    (*call->handler)(call->req, call->p0, call->announce);
}

}  // namespace

FanoutSubscriber::FanoutSubscriber(const ChatContext &ctx, ReadWorker &reads, JoinHandler on_join)
    : ctx_(ctx),
      reads_(reads),
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

StreamId FanoutSubscriber::start_point() const {
    // Every message with an id up to last_broadcast_ has been broadcast (to
    // whoever was in its room), every later one will be: Pub/Sub delivers in
    // publish order and the send script publishes in stream-id order, across
    // all rooms. So one position serves every room.
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
    if (std::optional<StreamId> id = StreamId::parse(envelope_id(payload))) last_broadcast_ = *id;
    ctx_.host->broadcast(ctx_.self, plugin::str(room), plugin::str(payload), 0);
    ctx_.host->metric_add(ctx_.m.fanout, 1);
}

void FanoutSubscriber::join_now(const RoomRequest &r, StreamId p0, bool announce) {
    member_since_[{r.conn, r.room}] = p0;
    auto call = std::make_unique<JoinCall>(JoinCall{&on_join_, r, p0, announce});
    if (ctx_.host->call_on_service(ctx_.self, run_join_call, call.get()) == AURORA_OK) {
        call.release();  // run_join_call owns it
    } else if (r.kind == RoomRequest::Kind::Resume) {
        reads_.release(r.conn, r.room, ReadWorker::Kind::Resume);  // the host is closing
    }
}

// A connection's entries (all of them, or one room's) go: one range of the
// map, never a scan over everyone else's.
void FanoutSubscriber::forget(aurora_conn_id conn, const std::string *room) {
    if (room) {
        member_since_.erase({conn, *room});
        return;
    }
    auto it = member_since_.lower_bound({conn, std::string()});
    while (it != member_since_.end() && it->first.first == conn) it = member_since_.erase(it);
}

void FanoutSubscriber::serve_requests() {
    std::deque<RoomRequest> batch;
    {
        std::lock_guard lock(mu_);
        batch.swap(requests_);
    }
    for (RoomRequest &r : batch) {
        switch (r.kind) {
        case RoomRequest::Kind::Join: join_now(r, start_point(), !r.quiet); break;
        case RoomRequest::Kind::Resume: resume(r); break;
        case RoomRequest::Kind::Leave: forget(r.conn, &r.room); break;
        case RoomRequest::Kind::Forget: forget(r.conn, nullptr); break;
        }
    }
}

// Fixes the resume's range and hands it on; the read happens elsewhere (see
// the header).
void FanoutSubscriber::resume(const RoomRequest &r) {
    auto member = member_since_.find({r.conn, r.room});
    if (!ready_) {
        // Not subscribed: P0 would not be a position of the live stream.
        ctx_.host->metric_add(ctx_.m.resumes, 1);
        ctx_.host->send_error(ctx_.self, r.conn, "unavailable", "the message store is unavailable",
                              plugin::str(r.ref_json));
        reads_.release(r.conn, r.room, ReadWorker::Kind::Resume);
        if (member == member_since_.end()) {  // it asked for the room: it joins, for when Redis is back
            RoomRequest join = r;
            join.kind = RoomRequest::Kind::Join;
            join_now(join, start_point(), false);
        }
        return;
    }
    if (member == member_since_.end()) {
        join_now(r, start_point(), false);  // the service thread passes it on once joined
        return;
    }
    StreamId since = StreamId::parse(r.since).value_or(StreamId{});
    reads_.resume(ResumeJob{r.conn, r.room, since, member->second, r.ref_json});
}

}  // namespace aurora::chat
