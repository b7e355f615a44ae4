#include "shard_fanout.h"

#include <algorithm>

#include "chat_protocol.h"

namespace aurora::chat {

namespace {
constexpr size_t kMaxHeld = 65536;  // payloads held per room while its tail is read (a round trip)
}

ShardFanout::ShardFanout(const ChatContext &ctx, ReadWorker &reads, JoinHandler on_join)
    : ctx_(ctx),
      reads_(reads),
      on_join_(std::move(on_join)),
      data_(ctx, ctx.redis_url, std::chrono::milliseconds(ctx.s.redis_timeout_ms), 1024, "fanout-tail"),
      pubsub_(ctx, data_, std::chrono::milliseconds(ctx.s.redis_timeout_ms),
              {[this](std::string_view ch, std::string_view payload) { on_message(ch, payload); },
               [this](const std::string &ch) { on_subscribed(ch); }, [this](const std::string &ch) { on_lost(ch); }}) {}

ShardFanout::~ShardFanout() {
    if (timer_) ctx_.host->timer_stop(timer_);
}

bool ShardFanout::start() {
    data_.on_map([this] { ctx_.host->metric_set(ctx_.m.redis_up, data_.all_up() ? 1 : 0); });
    data_.on_node_down([this](plugin::AsyncRedis &) { ctx_.host->metric_set(ctx_.m.redis_up, 0); });
    timer_ = ctx_.host->timer_start(ctx_.self, 100, 100, tick, this);
    return timer_ && data_.start() && pubsub_.start();
}

void ShardFanout::on_subscribed(const std::string &channel) {
    std::string name(ctx_.room_of(channel));
    auto it = rooms_.find(name);
    if (it == rooms_.end() || it->second.state != Room::State::Subscribing) return;  // not one we wait for
    Room &room = it->second;
    room.state = Room::State::ReadingTail;
    room.held.clear();
    room.epoch = ++epochs_;
    room.tail_in_flight = false;
    read_tail(name);
}

// Subscribed first, then the tail: every message after it reaches us. A
// read that cannot be sent or fails is sent again from the timer.
void ShardFanout::read_tail(const std::string &name) {
    auto it = rooms_.find(name);
    if (it == rooms_.end() || it->second.state != Room::State::ReadingTail || it->second.tail_in_flight) return;
    const uint64_t epoch = it->second.epoch;
    bool queued = data_.command(ctx_.slot(name), {"XREVRANGE", ctx_.stream(name), "+", "-", "COUNT", "1"},
                                [this, name, epoch](const redisReply *tail) {
                                    auto now = rooms_.find(name);
                                    if (now == rooms_.end() || now->second.epoch != epoch) return;  // lost meanwhile
                                    now->second.tail_in_flight = false;
                                    if (!tail || tail->type != REDIS_REPLY_ARRAY) {
                                        tail_due_.insert(name);
                                        return;
                                    }
                                    StreamId t;
                                    if (tail->elements == 1) {
                                        const redisReply *e = tail->element[0];
                                        t = StreamId::parse(std::string_view(e->element[0]->str, e->element[0]->len))
                                                .value_or(StreamId{});
                                    }
                                    go_live(name, t);
                                });
    if (queued) {
        it->second.tail_in_flight = true;
        tail_due_.erase(name);
    } else {
        tail_due_.insert(name);  // that master is not answering yet
    }
}

void ShardFanout::go_live(const std::string &name, StreamId tail) {
    Room &room = rooms_.at(name);
    room.state = Room::State::Live;
    room.floor = tail;
    // Members from before a lost subscription: what was published meanwhile
    // is in the stream up to `tail`, and a resume now covers it.
    for (aurora_conn_id conn : room.members) {
        auto m = member_since_.find({conn, name});
        if (m != member_since_.end()) m->second = std::max(m->second, tail);
    }
    going_live_ = name;  // the handlers' leaves must not take the room away under this loop
    std::vector<RoomRequest> waiting = std::move(room.waiting);
    std::vector<std::string> held = std::move(room.held);
    room.waiting.clear();
    room.held.clear();
    waiting_.erase(name);
    ctx_.host->metric_set(ctx_.m.redis_up, data_.all_up() ? 1 : 0);
    for (const RoomRequest &r : waiting) {
        Room &now = rooms_.at(name);  // kept by going_live_
        if (r.kind == RoomRequest::Kind::Resume)
            resume(now, r);
        else
            join_now(now, r, std::max(now.last, now.floor), !r.quiet);
    }
    going_live_.clear();
    auto it = rooms_.find(name);
    if (it == rooms_.end()) return;
    for (const std::string &payload : held) deliver(it->second, name, payload);
    unsubscribe_if_empty(name);
}

void ShardFanout::on_lost(const std::string &channel) {
    auto it = rooms_.find(std::string(ctx_.room_of(channel)));
    if (it == rooms_.end()) return;
    it->second.state = Room::State::Subscribing;
    it->second.held.clear();
    it->second.epoch = ++epochs_;
    it->second.tail_in_flight = false;
    ctx_.host->metric_set(ctx_.m.redis_up, 0);
}

void ShardFanout::on_message(std::string_view channel, std::string_view payload) {
    std::string_view name = ctx_.room_of(channel);
    auto it = rooms_.find(std::string(name));
    if (it == rooms_.end()) return;
    Room &room = it->second;
    switch (room.state) {
    case Room::State::Live: deliver(room, name, payload); return;
    case Room::State::ReadingTail:
        if (room.held.size() < kMaxHeld) room.held.emplace_back(payload);
        else ctx_.log(AURORA_LOG_WARN, "fan-out: room " + std::string(name) + ": too many messages while its tail was read; "
                                       "members resume from the stream");
        return;
    case Room::State::Subscribing: return;
    }
}

void ShardFanout::deliver(Room &room, std::string_view name, std::string_view payload) {
    if (std::optional<StreamId> id = StreamId::parse(envelope_id(payload))) {
        if (*id <= room.floor) return;  // in the stream before the room went live: a resume sends it
        room.last = std::max(room.last, *id);
    }
    ctx_.host->broadcast(ctx_.self, aurora_str{name.data(), name.size()}, aurora_str{payload.data(), payload.size()}, 0);
    ctx_.host->metric_add(ctx_.m.fanout, 1);
}

void ShardFanout::join_now(Room &room, const RoomRequest &r, StreamId p0, bool announce) {
    member_since_.insert_or_assign({r.conn, r.room}, p0);
    room.members.insert(r.conn);
    on_join_(r, p0, announce);
}

void ShardFanout::wait_in(Room &room, const std::string &name, RoomRequest r) {
    if (room.waiting.empty()) room.waiting_since = Clock::now();
    room.waiting.push_back(std::move(r));
    waiting_.insert(name);
    pubsub_.subscribe(ctx_.channel(name));
}

void ShardFanout::request(const RoomRequest &r) {
    switch (r.kind) {
    case RoomRequest::Kind::Join:
    case RoomRequest::Kind::Resume: {
        Room &room = rooms_[r.room];
        if (room.state == Room::State::Live) {
            if (r.kind == RoomRequest::Kind::Resume)
                resume(room, r);
            else
                join_now(room, r, std::max(room.last, room.floor), !r.quiet);
            return;
        }
        wait_in(room, r.room, r);
        return;
    }
    case RoomRequest::Kind::Leave: leave(r.conn, r.room); return;
    case RoomRequest::Kind::Forget: forget(r.conn); return;
    }
}

void ShardFanout::resume(Room &room, const RoomRequest &r) {
    auto member = member_since_.find({r.conn, r.room});
    if (member == member_since_.end()) {
        join_now(room, r, std::max(room.last, room.floor), false);  // the handler passes it on once joined
        return;
    }
    StreamId since = StreamId::parse(r.since).value_or(StreamId{});
    reads_.resume(ResumeJob{r.conn, r.room, since, member->second, r.ref_json});
}

// A waiting resume holds a read slot: given back with it.
void ShardFanout::drop_waiting(Room &room, aurora_conn_id conn) {
    std::erase_if(room.waiting, [this, conn](const RoomRequest &w) {
        if (w.conn != conn) return false;
        if (w.kind == RoomRequest::Kind::Resume) reads_.release(w.conn, w.room, ReadWorker::Kind::Resume);
        return true;
    });
}

void ShardFanout::leave(aurora_conn_id conn, const std::string &name) {
    auto it = rooms_.find(name);
    if (it == rooms_.end()) return;
    member_since_.erase({conn, name});
    it->second.members.erase(conn);
    drop_waiting(it->second, conn);
    if (it->second.waiting.empty()) waiting_.erase(name);
    unsubscribe_if_empty(name);
}

void ShardFanout::forget(aurora_conn_id conn) {
    std::vector<std::string> touched;
    auto it = member_since_.lower_bound({conn, std::string()});
    while (it != member_since_.end() && it->first.first == conn) {
        touched.push_back(it->first.second);
        if (auto room = rooms_.find(it->first.second); room != rooms_.end()) room->second.members.erase(conn);
        it = member_since_.erase(it);
    }
    for (const std::string &name : std::vector<std::string>(waiting_.begin(), waiting_.end())) {
        Room &room = rooms_.at(name);
        size_t before = room.waiting.size();
        drop_waiting(room, conn);
        if (room.waiting.size() != before) touched.push_back(name);
        if (room.waiting.empty()) waiting_.erase(name);
    }
    for (const std::string &name : touched) unsubscribe_if_empty(name);
}

void ShardFanout::unsubscribe_if_empty(const std::string &name) {
    auto it = rooms_.find(name);
    if (it == rooms_.end() || !it->second.members.empty() || !it->second.waiting.empty() || name == going_live_)
        return;
    pubsub_.unsubscribe(ctx_.channel(name));
    tail_due_.erase(name);
    waiting_.erase(name);
    rooms_.erase(it);
}

// Not live in time (its master is down, or the cluster has no map yet):
// the joins take effect as in single mode while Redis is away, the resumes
// are answered `unavailable`. The room goes live later; members' P0 then
// move up to its tail, so a resume covers what they missed.
void ShardFanout::settle_overdue(const std::string &name) {
    Room &room = rooms_.at(name);
    std::vector<RoomRequest> waiting = std::move(room.waiting);
    room.waiting.clear();
    waiting_.erase(name);
    going_live_ = name;
    for (RoomRequest &r : waiting) {
        Room &now = rooms_.at(name);
        if (r.kind == RoomRequest::Kind::Resume) {
            ctx_.host->metric_add(ctx_.m.resumes, 1);
            ctx_.host->send_error(ctx_.self, r.conn, "unavailable", "the message store is unavailable",
                                  plugin::str(r.ref_json));
            reads_.release(r.conn, r.room, ReadWorker::Kind::Resume);
            r.kind = RoomRequest::Kind::Join;  // it asked for the room: it joins
            join_now(now, r, std::max(now.last, now.floor), false);
        } else {
            join_now(now, r, std::max(now.last, now.floor), !r.quiet);
        }
    }
    going_live_.clear();
    unsubscribe_if_empty(name);
}

void ShardFanout::tick(void *p) {
    auto *self = static_cast<ShardFanout *>(p);
    for (const std::string &name : std::vector<std::string>(self->tail_due_.begin(), self->tail_due_.end()))
        self->read_tail(name);
    const auto overdue = Clock::now() - std::chrono::milliseconds(2 * self->ctx_.s.redis_timeout_ms);
    for (const std::string &name : std::vector<std::string>(self->waiting_.begin(), self->waiting_.end())) {
        auto it = self->rooms_.find(name);
        if (it != self->rooms_.end() && it->second.waiting_since < overdue) self->settle_overdue(name);
    }
}

}  // namespace aurora::chat
