// The fan-out subscriber: the plugin thread that holds `PSUBSCRIBE chat.*`
// and hands every payload to host->broadcast (serialised once, shared by all
// local recipients). It is also the SEQUENCER of room membership: joins and
// resumes are requested here, so that a connection starts receiving a room
// at a known point of the stream, and resume can send exactly what it
// missed, with no gap and no repeat:
//
//   join R      -> P0 = the last id this thread broadcast (in any room: ids
//                  are global and Pub/Sub keeps their order; or the
//                  stream's tail when it subscribed). Then the service
//                  thread adds the connection to R through
//                  host->call_on_service, which runs in one FIFO with this
//                  thread's broadcasts: after the broadcast of P0, before
//                  the next one. So it gets live exactly the messages of R
//                  with id > P0.
//   resume R X  -> member of R since P0 (joined as above, earlier or now:
//                  not a member yet, it joins now, quietly): the read
//                  worker sends (X, P0] from the stream. Every message up to
//                  P0 is in the stream (the send script adds before it
//                  publishes), every later one comes live: no gap, no
//                  repeat. The read runs on the read worker's thread, never
//                  here: it may scan resume_scan_max entries, and every live
//                  message would wait behind it. The replayed messages and
//                  the live ones may interleave; ids order them.
//
// Nothing one client asks for costs this thread more than a map lookup: no
// Redis read, no scan over other connections.
//
// Thread contract: request() from any thread (mu_ + an eventfd wake-up);
// everything else on this thread. `ready()` is an atomic.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "chat_context.h"
#include "read_worker.h"
#include "redis_connection.h"
#include "stream_id.h"

namespace aurora::chat {

using plugin::StreamId;

struct RoomRequest {
    enum class Kind { Join, Resume, Leave, Forget } kind;
    aurora_conn_id conn = 0;
    std::string room;
    std::string since;     // Resume (a valid stream id: checked on the service thread)
    std::string ref_json;  // answered with the ack
    bool quiet = false;    // Join: the automatic join at connect, not announced
};

class FanoutSubscriber {
public:
    // Runs on the service thread when a requested join takes effect, the
    // connection receiving the room's live messages after `p0`. `r` is a
    // Resume when the join starts one (the handler hands it to the read
    // worker with the range (since, p0]). `announce` is false for the
    // automatic join and for resumes (answered by `resumed`).
    using JoinHandler = std::function<void(const RoomRequest &r, StreamId p0, bool announce)>;

    FanoutSubscriber(const ChatContext &ctx, ReadWorker &reads, JoinHandler on_join);
    ~FanoutSubscriber();
    bool init(std::string &error);  // creates the wake-up eventfd
    void request(RoomRequest r);
    void run(aurora_worker *w);
    bool ready() const { return ready_.load(); }

private:
    bool subscribe(std::string &err);
    void pump_messages();
    void handle(const std::string &channel, std::string payload);
    void serve_requests();
    void join_now(const RoomRequest &r, StreamId p0, bool announce);
    void resume(const RoomRequest &r);
    void forget(aurora_conn_id conn, const std::string *room);
    StreamId start_point() const;

    const ChatContext &ctx_;
    ReadWorker &reads_;
    JoinHandler on_join_;
    plugin::RedisConnection sub_, data_;
    int wake_fd_ = -1;
    std::atomic<bool> ready_{false};

    // [subscriber thread]
    StreamId tail_at_subscribe_;
    StreamId last_broadcast_;  // the newest message broadcast, in any room
    // (conn, room) -> P0, ordered by connection first: a connection's
    // entries are one range.
    std::map<std::pair<aurora_conn_id, std::string>, StreamId> member_since_;

    std::mutex mu_;
    std::deque<RoomRequest> requests_;  // guarded by mu_
};

}  // namespace aurora::chat
