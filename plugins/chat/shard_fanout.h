// Live delivery in cluster mode (docs/scaling.md): each room's shard
// channel (chat.{s}.<room>) is SSUBSCRIBEd on its master while this process
// has a member in the room, and unsubscribed when the last one leaves.
//
// THE SEQUENCER, PER ROOM. Stream ids are ordered within one stream, and a
// room's messages all go to its shard's stream and are published on one
// master, in id order (the send script adds, then publishes). So each room
// keeps its own position, where FanoutSubscriber keeps one for all:
//
//   first join of R  -> SSUBSCRIBE chat.{s}.R; once confirmed, read the
//                       tail T of chat:messages:{s}. Messages of R that
//                       arrive meanwhile are held. Then the room is live:
//                       the waiting joins take effect with P0 = T, the held
//                       messages with id > T are delivered, and from then on
//                       a message with id <= T is not (the stream has it,
//                       and a resume up to T sends it: no repeat).
//   later joins of R -> P0 = the last id delivered in R (or T): every
//                       message of R up to it was delivered, every later one
//                       will be.
//   resume R X       -> as FanoutSubscriber: (X, P0] from the stream.
//   not live within 2 x redis_timeout_ms (its master is down): the waiting
//                       joins take effect anyway (as in single mode while
//                       Redis is away: what they miss, a resume covers once
//                       the room is live), waiting resumes are answered
//                       `unavailable`.
//   subscription lost (a master failed, the slot moved)
//                    -> subscribed again where the map says; the tail is
//                       read again, and every member's P0 moves up to it, so
//                       a resume covers what was published meanwhile.
//
// Ordering across rooms no longer holds in cluster mode: two rooms on two
// shards have unrelated ids, and their messages reach a client in whatever
// order their masters' connections are read.
//
// Thread contract: [service] (start() in init, the destructor in shutdown).
#pragma once

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "async_cluster.h"
#include "fanout_subscriber.h"
#include "shard_pubsub.h"

namespace aurora::chat {

class ShardFanout final : public Fanout {
public:
    ShardFanout(const ChatContext &ctx, ReadWorker &reads, JoinHandler on_join);
    ~ShardFanout() override;
    bool start() override;
    void request(const RoomRequest &r) override;
    // Every master answers: a room can be subscribed.
    bool ready() const override { return data_.all_up(); }

private:
    using Clock = std::chrono::steady_clock;
    struct Room {
        enum class State { Subscribing, ReadingTail, Live } state = State::Subscribing;
        StreamId floor;  // the tail when it became live: ids up to it are the stream's
        StreamId last;   // the newest id delivered
        std::vector<RoomRequest> waiting;  // joins and resumes, until live (or the deadline)
        Clock::time_point waiting_since{};
        std::vector<std::string> held;      // payloads that came while the tail was read
        std::set<aurora_conn_id> members;   // this process's connections in it
        uint64_t epoch = 0;                 // one per subscription: a late tail answer is dropped
        bool tail_in_flight = false;
    };
    void on_message(std::string_view channel, std::string_view payload);
    void on_subscribed(const std::string &confirmed);
    void on_lost(const std::string &channel);
    void deliver(Room &room, std::string_view name, std::string_view payload);
    void go_live(const std::string &name, StreamId tail);
    void join_now(Room &room, const RoomRequest &r, StreamId p0, bool announce);
    void resume(Room &room, const RoomRequest &r);
    void leave(aurora_conn_id conn, const std::string &name);
    void forget(aurora_conn_id conn);
    void unsubscribe_if_empty(const std::string &name);
    void read_tail(const std::string &name);
    void wait_in(Room &room, const std::string &name, RoomRequest r);
    void drop_waiting(Room &room, aurora_conn_id conn);
    void settle_overdue(const std::string &name);
    static void tick(void *p);

    const ChatContext &ctx_;
    ReadWorker &reads_;
    JoinHandler on_join_;
    plugin::AsyncCluster data_;  // the tails
    plugin::ShardPubSub pubsub_;
    std::map<std::string, Room> rooms_;  // by room name
    std::map<std::pair<aurora_conn_id, std::string>, StreamId> member_since_;
    uint64_t epochs_ = 0;
    std::string going_live_;          // the room go_live() is working on
    std::set<std::string> waiting_;   // rooms with requests waiting
    std::set<std::string> tail_due_;  // rooms whose tail read is to be (re)sent
    aurora_timer *timer_ = nullptr;
};

}  // namespace aurora::chat
