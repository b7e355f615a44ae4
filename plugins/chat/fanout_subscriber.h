// The fan-out subscriber: `PSUBSCRIBE chat.*` on the host's service loop
// (ABI 1.2, plugin::AsyncRedis), handing every payload to host->broadcast
// (serialised once, shared by all local recipients) the moment it is read:
// no thread, no hand-off. It is also the SEQUENCER of room membership:
// joins and resumes go through it, so that a connection starts receiving a
// room at a known point of the stream, and resume can send exactly what it
// missed, with no gap and no repeat:
//
//   join R      -> P0 = the last id broadcast (in any room: ids are global
//                  and Pub/Sub keeps their order; or the stream's tail when
//                  it subscribed), and the connection joins R now. Joins and
//                  broadcasts run on the one service thread, so it gets live
//                  exactly the messages of R with id > P0.
//   resume R X  -> member of R since P0 (joined as above, earlier or now:
//                  not a member yet, it joins now, quietly): the read
//                  worker sends (X, P0] from the stream. Every message up to
//                  P0 is in the stream (the send script adds before it
//                  publishes), every later one comes live: no gap, no
//                  repeat. The read runs on the read worker's thread, never
//                  here: it may scan resume_scan_max entries, and live
//                  delivery never waits behind it. The replayed messages and
//                  the live ones may interleave; ids order them.
//
// Nothing one client asks for costs more here than a map lookup: no Redis
// read, no scan over other connections.
//
// Thread contract: [service] (start() in init, the destructor in shutdown).
#pragma once

#include <functional>
#include <map>
#include <string>

#include "chat_context.h"
#include "read_worker.h"
#include "redis_async.h"
#include "stream_id.h"

namespace aurora::chat {

using plugin::StreamId;

struct RoomRequest {
    enum class Kind { Join, Resume, Leave, Forget } kind;
    aurora_conn_id conn = 0;
    std::string room;
    std::string since;     // Resume (a valid stream id: checked by the caller)
    std::string ref_json;  // answered with the ack
    bool quiet = false;    // Join: the automatic join at connect, not announced
};

// Live delivery and the join sequencer: FanoutSubscriber below (single and
// sentinel modes), ShardFanout (cluster mode, shard_fanout.h).
class Fanout {
public:
    // Called when a join takes effect, the connection receiving the room's
    // live messages after `p0`. `r` is a Resume when the join starts one
    // (the handler hands it to the read worker with the range (since,
    // p0]). `announce` is false for the automatic join and for resumes
    // (answered by `resumed`).
    using JoinHandler = std::function<void(const RoomRequest &r, StreamId p0, bool announce)>;
    virtual ~Fanout() = default;
    virtual bool start() = 0;  // init: connects; subscribes once Redis answers
    virtual void request(const RoomRequest &r) = 0;
    virtual bool ready() const = 0;
};

class FanoutSubscriber final : public Fanout {
public:
    // The join handler is called synchronously, from request().
    FanoutSubscriber(const ChatContext &ctx, ReadWorker &reads, JoinHandler on_join);
    bool start() override;
    void request(const RoomRequest &r) override;
    bool ready() const override { return ready_; }

private:
    void on_pubsub(const redisReply *r);
    void read_tail();
    void handle(std::string_view channel, std::string_view payload);
    void join_now(const RoomRequest &r, StreamId p0, bool announce);
    void resume(const RoomRequest &r);
    void forget(aurora_conn_id conn, const std::string *room);
    StreamId start_point() const;

    const ChatContext &ctx_;
    ReadWorker &reads_;
    JoinHandler on_join_;
    plugin::AsyncRedis sub_, data_;  // Pub/Sub; the stream's tail at each (re)subscribe
    bool subscribed_ = false;        // PSUBSCRIBE confirmed on the current connection
    bool ready_ = false;             // subscribed and the tail read: P0 is a position of the live stream
    StreamId tail_at_subscribe_;
    StreamId last_broadcast_;  // the newest message broadcast, in any room
    // (conn, room) -> P0, ordered by connection first: a connection's
    // entries are one range.
    std::map<std::pair<aurora_conn_id, std::string>, StreamId> member_since_;
};

}  // namespace aurora::chat
