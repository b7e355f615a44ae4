#include "fanout_subscriber.h"

#include <algorithm>
#include <optional>

#include "chat_protocol.h"
#include "json.h"

namespace aurora::chat {

FanoutSubscriber::FanoutSubscriber(const ChatContext &ctx, ReadWorker &reads, JoinHandler on_join)
    : ctx_(ctx),
      reads_(reads),
      on_join_(std::move(on_join)),
      // A subscription has no replies to wait for (no deadline applies to
      // messages); the tail read has one.
      sub_(ctx, ctx.redis_url, std::chrono::milliseconds(ctx.s.redis_timeout_ms), 16, "fanout"),
      data_(ctx, ctx.redis_url, std::chrono::milliseconds(ctx.s.redis_timeout_ms), 16, "fanout-tail") {}

bool FanoutSubscriber::start() {
    sub_.on_up([this] {
        if (!sub_.subscribe({"PSUBSCRIBE", ctx_.s.channel_prefix + "*"}, [this](const redisReply *r) { on_pubsub(r); }))
            ctx_.log(AURORA_LOG_WARN, "fan-out: PSUBSCRIBE could not be sent");
    });
    sub_.on_down([this](const std::string &) {
        subscribed_ = ready_ = false;
        ctx_.host->metric_set(ctx_.m.redis_up, 0);
    });
    data_.on_up([this] { read_tail(); });
    return sub_.start() && data_.start();
}

StreamId FanoutSubscriber::start_point() const {
    // Every message with an id up to last_broadcast_ has been broadcast (to
    // whoever was in its room), every later one will be: Pub/Sub delivers in
    // publish order and the send script publishes in stream-id order, across
    // all rooms. So one position serves every room.
    return std::max(last_broadcast_, tail_at_subscribe_);
}

void FanoutSubscriber::on_pubsub(const redisReply *r) {
    // ["pmessage", pattern, channel, payload] or ["psubscribe", pattern, count]
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 || r->element[0]->type != REDIS_REPLY_STRING) return;
    std::string_view kind(r->element[0]->str, r->element[0]->len);
    if (kind == "pmessage" && r->elements == 4) {
        handle(std::string_view(r->element[2]->str, r->element[2]->len),
               std::string_view(r->element[3]->str, r->element[3]->len));
    } else if (kind == "psubscribe") {
        subscribed_ = true;
        read_tail();
    }
}

// Subscribed first, then read the tail: every message after it reaches us.
void FanoutSubscriber::read_tail() {
    if (!subscribed_ || ready_ || !data_.up()) return;  // the other half calls again
    data_.command({"XREVRANGE", ctx_.s.stream, "+", "-", "COUNT", "1"}, [this](const redisReply *tail) {
        if (!tail || tail->type != REDIS_REPLY_ARRAY || !subscribed_) return;  // data_'s next on_up tries again
        tail_at_subscribe_ = {};
        if (tail->elements == 1) {
            const redisReply *e = tail->element[0];
            if (auto id = StreamId::parse(std::string_view(e->element[0]->str, e->element[0]->len)))
                tail_at_subscribe_ = *id;
        }
        // Messages published while we were away were not delivered live: a
        // resume from any member now covers them (from the new tail back).
        for (auto &[key, since] : member_since_) since = std::max(since, tail_at_subscribe_);
        ready_ = true;
        ctx_.host->metric_set(ctx_.m.redis_up, 1);
        ctx_.log(AURORA_LOG_INFO, "subscribed to " + ctx_.s.channel_prefix + "*");
    });
}

void FanoutSubscriber::handle(std::string_view channel, std::string_view payload) {
    std::string_view room = ctx_.room_of(channel);
    if (room.empty()) return;
    if (std::optional<StreamId> id = StreamId::parse(envelope_id(payload))) last_broadcast_ = *id;
    ctx_.host->broadcast(ctx_.self, aurora_str{room.data(), room.size()}, aurora_str{payload.data(), payload.size()}, 0);
    ctx_.host->metric_add(ctx_.m.fanout, 1);
}

void FanoutSubscriber::join_now(const RoomRequest &r, StreamId p0, bool announce) {
    member_since_[{r.conn, r.room}] = p0;
    on_join_(r, p0, announce);
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

void FanoutSubscriber::request(const RoomRequest &r) {
    switch (r.kind) {
    case RoomRequest::Kind::Join: join_now(r, start_point(), !r.quiet); break;
    case RoomRequest::Kind::Resume: resume(r); break;
    case RoomRequest::Kind::Leave: forget(r.conn, &r.room); break;
    case RoomRequest::Kind::Forget: forget(r.conn, nullptr); break;
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
        join_now(r, start_point(), false);  // the handler passes it on once joined
        return;
    }
    StreamId since = StreamId::parse(r.since).value_or(StreamId{});
    reads_.resume(ResumeJob{r.conn, r.room, since, member->second, r.ref_json});
}

}  // namespace aurora::chat
