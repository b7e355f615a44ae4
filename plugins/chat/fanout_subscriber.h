// The fan-out subscriber: the plugin thread that holds `PSUBSCRIBE chat.*`
// and hands every payload to host->broadcast (serialised once, shared by all
// local recipients). It is also the SEQUENCER of room membership: joins and
// resumes are requested here, so that a connection starts receiving a room
// at a known point of that room's stream and resume can send exactly what it
// missed, in order, with no duplicate:
//
//   join R      -> remember P0 = the last id this thread broadcast (in any
//                  room: ids are global and Pub/Sub keeps their order; or
//                  the stream's tail when it subscribed), then have the
//                  service thread add the connection to R (host
//                  call_on_service, which is ordered with our broadcasts):
//                  it gets exactly the messages with id > P0.
//   resume R X  -> member of R since P0: send (X, P0] from the stream; the
//                  rest it got live. Not a member: send (X, now] from the
//                  stream, remember the last id W, and add it to R right
//                  before broadcasting the first live message with id > W.
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
#include <unordered_map>
#include <vector>

#include "chat_context.h"
#include "redis_connection.h"
#include "stream_id.h"

namespace aurora::chat {

using plugin::StreamId;

struct RoomRequest {
    enum class Kind { Join, Resume, Leave, Forget } kind;
    aurora_conn_id conn = 0;
    std::string room;
    std::string since;     // Resume
    std::string ref_json;  // answered with the ack
    bool quiet = false;    // Join: the automatic join at connect, not announced
};

class FanoutSubscriber {
public:
    // Runs on the service thread when a requested join takes effect;
    // `announce` is false for joins that end a resume (already answered).
    using JoinHandler = std::function<void(const RoomRequest &, bool announce)>;

    FanoutSubscriber(const ChatContext &ctx, JoinHandler on_join);
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
    size_t send_range(const RoomRequest &r, StreamId after, const StreamId *upto, StreamId &last_seen, bool &complete);
    StreamId start_point(const std::string &room) const;

    const ChatContext &ctx_;
    JoinHandler on_join_;
    plugin::RedisConnection sub_, data_;
    int wake_fd_ = -1;
    std::atomic<bool> ready_{false};

    // [subscriber thread]
    StreamId tail_at_subscribe_;
    StreamId last_broadcast_;  // the newest message broadcast, in any room
    std::map<std::pair<aurora_conn_id, std::string>, StreamId> member_since_;
    struct Catchup {
        RoomRequest req;
        StreamId watermark;
    };
    std::unordered_map<std::string, std::vector<Catchup>> catchups_;  // per room

    std::mutex mu_;
    std::deque<RoomRequest> requests_;  // guarded by mu_
};

}  // namespace aurora::chat
