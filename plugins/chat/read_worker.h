// The read worker: the plugin thread that serves the reads one client asks
// for (resume ranges from the stream, presence snapshots) on its own Redis
// connection. The fan-out subscriber, which delivers every live message, and
// the send pipeline, which stores them, never run such a read (DESIGN §3):
// a resume scans up to resume_scan_max entries, and three clients resuming
// from 0-0 on the fan-out thread once held a bystander's messages for
// seconds (tests/plugins/chat: test_resume_scans_never_delay_live_delivery).
//
// Admission, on the service thread before anything is queued: a client's
// resume or presence request takes a slot, at most one per connection, room
// and kind, and at most read_queue_max in all; otherwise the client gets
// `busy` at once and nothing happens. A slot is given back when the read is
// answered, or when the request ends on the way (join refused, Redis down,
// connection gone). The snapshot every join sends takes no slot: at most one
// is pending per connection and room (a later one merges into it).
//
// Order of service: all pending snapshots first, in one round trip (cheap,
// one ZRANGE per room); then one resume, connections taking turns (round
// robin), so a connection's resumes delay its own more than anyone else's.
//
// A resume arrives here with its range already fixed by the fan-out
// subscriber: (since, upto], where `upto` is the position at which the
// connection joined the room's live delivery (fanout_subscriber.h). This
// thread only reads and sends; when it runs does not matter for "no gap, no
// repeat", so nothing here is ordered with the live path.
//
// Thread contract: every public function from any thread (mu_); run() and
// everything it calls on the worker's own thread.
#pragma once

#include <compare>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "chat_context.h"
#include "redis_cluster.h"
#include "redis_connection.h"
#include "stream_id.h"

namespace aurora::chat {

using plugin::StreamId;

struct ResumeJob {
    aurora_conn_id conn = 0;
    std::string room;
    StreamId since;  // send the room's messages with since < id <= upto
    StreamId upto;
    std::string ref_json;
};

class ReadWorker {
public:
    enum class Kind { Resume, Presence, Receipts };
    enum class Admission { Ok, Duplicate, Full };

    explicit ReadWorker(const ChatContext &ctx);
    void run(aurora_worker *w);  // the thread's body (host->spawn)

    // Takes a slot for a resume of (conn, room); the resume itself follows
    // through resume() once its range is known, or release() gives it back.
    Admission admit_resume(aurora_conn_id conn, const std::string &room);
    // Queues an admitted resume; dropped if its slot was given back meanwhile
    // (the connection has gone).
    void resume(ResumeJob job);
    // Takes a slot and queues a presence snapshot answering the PENDING
    // `msg` (owned from here on when the result is Ok; not taken otherwise).
    // `kind`: Presence or Receipts (a room's newest readers: read_receipts).
    Admission presence(aurora_conn_id conn, const std::string &room, aurora_msg *msg, std::string ref_json,
                       Kind kind = Kind::Presence);
    // A snapshot for a connection that has just joined (no slot).
    void join_snapshot(aurora_conn_id conn, const std::string &room);
    void release(aurora_conn_id conn, const std::string &room, Kind kind);
    // The connection has gone: its slots and queued resumes go too.
    void forget(aurora_conn_id conn);

private:
    struct Slot {
        aurora_conn_id conn;
        std::string room;
        Kind kind;
        auto operator<=>(const Slot &) const = default;
    };
    struct SnapshotJob {
        aurora_conn_id conn = 0;
        std::string room;
        aurora_msg *msg = nullptr;  // a client's request (PENDING), or nullptr after a join (both snapshots)
        std::string ref_json;
        Kind kind = Kind::Presence;
    };

    Admission take_slot(const Slot &slot);  // mu_ held
    void wake();                            // mu_ held
    std::vector<SnapshotJob> take_snapshots();
    bool take_resume(ResumeJob &job);
    void serve_snapshots(std::vector<SnapshotJob> &jobs);
    void serve_resume(const ResumeJob &job);
    size_t send_range(const ResumeJob &job, StreamId &last_seen, bool &complete, bool &reached);
    // Every command's keys are in `slot` (cluster mode; unused otherwise).
    bool round_trip(uint16_t slot, const std::vector<std::vector<std::string>> &commands,
                    std::vector<plugin::RedisReply> &replies, std::string &err);
    void answer_snapshot(const std::string &room, const std::vector<SnapshotJob *> &list, const redisReply *members,
                         const redisReply *total, const redisReply *readers);
    void answer(SnapshotJob &job, const std::string &json);
    void answer_error(SnapshotJob &job, const char *code, const char *message);

    const ChatContext &ctx_;
    plugin::RedisConnection redis_;                 // [worker thread]
    std::unique_ptr<plugin::RedisCluster> cluster_;  // [worker thread]; cluster mode

    std::mutex mu_;
    std::set<Slot> slots_;                                      // guarded by mu_
    std::map<aurora_conn_id, std::deque<ResumeJob>> resumes_;   // guarded by mu_; per connection
    aurora_conn_id last_served_ = 0;                            // guarded by mu_; the round robin's position
    std::vector<SnapshotJob> snapshots_;                        // guarded by mu_
    std::set<std::pair<aurora_conn_id, std::string>> join_snapshots_;  // guarded by mu_
    aurora_worker *worker_ = nullptr;                           // guarded by mu_; set while the thread runs
    bool stopped_ = false;                                      // guarded by mu_
};

}  // namespace aurora::chat
