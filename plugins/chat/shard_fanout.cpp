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

bool ShardFanout::start() {
    data_.on_map([this] {
        ctx_.host->metric_set(ctx_.m.redis_up, data_.all_up() ? 1 : 0);
    });
    data_.on_node_down([this](plugin::AsyncRedis &) { ctx_.host->metric_set(ctx_.m.redis_up, 0); });
    return data_.start() && pubsub_.start();
}

void ShardFanout::on_subscribed(const std::string &confirmed) {
    const std::string channel = confirmed;  // ShardPubSub's own string: unsubscribe() below frees it
    std::string name(ctx_.room_of(channel));
    auto it = rooms_.find(name);
    if (it == rooms_.end()) return;
    Room &room = it->second;
    room.state = Room::State::ReadingTail;
    room.held.clear();
    const uint64_t epoch = room.epoch = ++epochs_;
    // Subscribed first, then the tail: every message after it reaches us.
    bool queued = data_.command(ctx_.slot(name), {"XREVRANGE", ctx_.stream(name), "+", "-", "COUNT", "1"},
                                [this, name, epoch](const redisReply *tail) {
                                    auto now = rooms_.find(name);
                                    if (now == rooms_.end() || now->second.epoch != epoch) return;  // lost meanwhile
                                    if (!tail || tail->type != REDIS_REPLY_ARRAY) {
                                        on_lost(ctx_.channel(name));  // subscribed again, tail read again
                                        pubsub_.unsubscribe(ctx_.channel(name));
                                        pubsub_.subscribe(ctx_.channel(name));
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
    if (!queued) {  // that master is not answering: start over once it does
        room.state = Room::State::Subscribing;
        pubsub_.unsubscribe(channel);
        pubsub_.subscribe(channel);
    }
}

void ShardFanout::go_live(const std::string &name, StreamId tail) {
    Room &room = rooms_.at(name);
    room.state = Room::State::Live;
    room.floor = tail;
    // Members from before a lost subscription: what was published meanwhile
    // is in the stream up to `tail`, and a resume now covers it.
    for (auto it = member_since_.begin(); it != member_since_.end(); ++it)
        if (it->first.second == name) it->second = std::max(it->second, tail);
    going_live_ = name;  // the handlers' leaves must not take the room away under this loop
    std::vector<RoomRequest> waiting = std::move(room.waiting);
    std::vector<std::string> held = std::move(room.held);
    room.waiting.clear();
    room.held.clear();
    ctx_.host->metric_set(ctx_.m.redis_up, data_.all_up() ? 1 : 0);
    for (const RoomRequest &r : waiting) {
        auto it = rooms_.find(name);
        if (r.kind == RoomRequest::Kind::Resume)
            resume(it->second, r);
        else
            join_now(it->second, r, std::max(it->second.last, it->second.floor), !r.quiet);
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
    auto [it, fresh] = member_since_.insert_or_assign({r.conn, r.room}, p0);
    if (fresh) ++room.members;
    on_join_(r, p0, announce);
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
        if (r.kind == RoomRequest::Kind::Resume && !data_.up(ctx_.slot(r.room))) {
            // Its master is not answering: no position to resume from now.
            ctx_.host->metric_add(ctx_.m.resumes, 1);
            ctx_.host->send_error(ctx_.self, r.conn, "unavailable", "the message store is unavailable",
                                  plugin::str(r.ref_json));
            reads_.release(r.conn, r.room, ReadWorker::Kind::Resume);
            RoomRequest join = r;  // it asked for the room: it joins once the room is live
            join.kind = RoomRequest::Kind::Join;
            join.quiet = true;
            room.waiting.push_back(std::move(join));
        } else {
            room.waiting.push_back(r);
        }
        pubsub_.subscribe(ctx_.channel(r.room));
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

void ShardFanout::leave(aurora_conn_id conn, const std::string &name) {
    auto it = rooms_.find(name);
    if (it == rooms_.end()) return;
    if (member_since_.erase({conn, name})) --it->second.members;
    std::erase_if(it->second.waiting, [conn](const RoomRequest &w) { return w.conn == conn; });
    unsubscribe_if_empty(name);
}

void ShardFanout::forget(aurora_conn_id conn) {
    std::vector<std::string> touched;
    auto it = member_since_.lower_bound({conn, std::string()});
    while (it != member_since_.end() && it->first.first == conn) {
        touched.push_back(it->first.second);
        if (auto room = rooms_.find(it->first.second); room != rooms_.end()) --room->second.members;
        it = member_since_.erase(it);
    }
    for (auto &[name, room] : rooms_) {  // joins still waiting: rooms being subscribed only
        if (std::erase_if(room.waiting, [conn](const RoomRequest &w) { return w.conn == conn; }))
            touched.push_back(name);
    }
    for (const std::string &name : touched) unsubscribe_if_empty(name);
}

void ShardFanout::unsubscribe_if_empty(const std::string &name) {
    auto it = rooms_.find(name);
    if (it == rooms_.end() || it->second.members > 0 || !it->second.waiting.empty() || name == going_live_) return;
    pubsub_.unsubscribe(ctx_.channel(name));
    rooms_.erase(it);
}

}  // namespace aurora::chat
