// The send pipeline: everything a client asks that writes to Redis
// (messages, read markers, typing, presence), on the host's service loop
// (ABI 1.2, plugin::AsyncRedis): no thread, no hand-off per message.
//
// submit() issues the job's commands at once; the commands of every hook of
// one loop iteration leave in one write before the loop sleeps, so batches
// grow with load (DESIGN §3) as they did with a thread, without its two
// wake-ups per message. A message stays PENDING in the host until its
// reply, then is resumed with an ack or an error. While Redis is
// unreachable, slow past redis_timeout_ms, or too far behind
// (kMaxPending), every job with a waiting client is answered `unavailable`
// at once: never dropped silently, never acked, never queued without bound.
// With wait_replicas (docs/scaling.md), one WAIT follows each batch of
// messages on the same connection; their answers are held until it
// returns, and a message fewer replicas confirmed is answered
// `unavailable` (it may be kept: the client sends it again with its ref).
// Every job costs O(1) commands: reads whose size a client chooses
// (presence snapshots, resume ranges) are the read worker's thread's
// (read_worker.h), and presence events go out coalesced per room
// (presence_coalescer.h).
//
// Thread contract: [service] (start() in init, the destructor in shutdown).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "chat_context.h"
#include "presence_coalescer.h"
#include "read_worker.h"
#include "async_cluster.h"

namespace aurora::chat {

// How a message sent for the server API (no client, no aurora_msg) ended:
// `code` empty when stored (then `id`, and `duplicate` for a ref seen
// before), else an error code and its text.
struct SendResult {
    std::string code, text, id;
    bool duplicate = false;
};

struct SendJob {
    enum class Kind { Message, Change, Typing, Read, PresenceJoin, PresenceLeave } kind;
    explicit SendJob(Kind k) : kind(k) {}
    aurora_msg *msg = nullptr;  // owned (PENDING) until resumed; Message, Read
    // Message without `msg` (the server API): called exactly once, on the
    // service thread, and never from inside submit().
    std::function<void(const SendResult &)> done;
    aurora_conn_id conn = 0;
    std::string room, user_id, username, text, ref_value, ref_json, id;
    // Change (kChangeScript): "edit", "delete" or "reaction"; the message it
    // changes; the edit's text is `text`, the reaction's emoji `emoji`.
    std::string change, target, emoji, op;
    // Message: its attachments' descriptions, a JSON array ("": none), put
    // there by submit_attached.
    std::string attachments;
    bool moderator = false;  // delete: may delete others' messages
    std::string dedup_key;  // Message with a ref: the key it is remembered under ("": chat:ref:<user>:<ref>)
    std::chrono::steady_clock::time_point queued = std::chrono::steady_clock::now();
    bool retried = false;  // sent again once after NOSCRIPT, MOVED or ASK
    plugin::AsyncRedis *node = nullptr;  // Message with wait_replicas: the master it went to
    std::string failure;   // why issue() could not send it
};

class SendPipeline {
public:
    static constexpr size_t kMaxPending = 65536;  // commands waiting for Redis

    // `reads` gets a join's snapshot once the member is stored.
    SendPipeline(const ChatContext &ctx, ReadWorker &reads);
    // Takes this process's members out of presence (best effort, blocking:
    // the loop has ended).
    ~SendPipeline();
    bool start();  // init: connects, arms the presence timers
    // From a hook: AURORA_PENDING when job.msg will be resumed later,
    // AURORA_REPLY when its error reply is set now (the hook returns it: a
    // message is not resumed inside its own hook), AURORA_DROP for a job
    // without a message. A job with `done` returns AURORA_DROP, and `done`
    // runs later whatever happens (an error found now too: from the loop).
    aurora_verdict submit(SendJob job);
    // A message (with `msg`) naming uploads: reads each upload's description
    // (chat:upload:<id>, written by the ingest plugin's upload route),
    // checks it is there and the sender's, puts the descriptions into the
    // message, then submits it. AURORA_PENDING, or AURORA_REPLY with an
    // error set when Redis cannot be asked. Errors found later are answered
    // with msg_resume: `bad_attachment`, `unavailable`.
    aurora_verdict submit_attached(SendJob job, std::vector<std::string> upload_ids);
    // Redis answers and the scripts are loaded: a message would be sent.
    bool ready() const { return usable(); }
    // Called for every message stored (not a duplicate ref), with its id,
    // before its sender is answered (event_sink.h). Set at init.
    std::function<void(const SendJob &, const std::string &id)> on_stored;

private:
    using Clock = std::chrono::steady_clock;
    // false: failed at once. `ask`: an ASK redirection, this once.
    bool issue(std::shared_ptr<SendJob> job, const plugin::Redirect *ask = nullptr);
    // `via`: set to the connection it went to.
    bool command(uint16_t slot, const std::vector<std::string_view> &argv, plugin::AsyncRedis::Callback cb,
                 const plugin::Redirect *ask = nullptr, plugin::AsyncRedis **via = nullptr);
    void load_scripts(plugin::AsyncRedis &node);
    uint16_t slot_of(const SendJob &job) const;  // the slot of its keys (cluster mode; 0 otherwise)
    void complete(SendJob &job, const redisReply *r);
    void fail(SendJob &job, const char *code, const std::string &why);
    void finish(aurora_msg *msg, const std::string &reply);
    void publish_presence();
    void publish_receipts();
    void refresh_presence();
    std::string member(const SendJob &job) const;
    bool loaded() const { return !send_sha_.empty() && !read_sha_.empty() && !change_sha_.empty(); }
    bool usable(uint16_t slot) const { return redis_.up(slot) && loaded(); }
    bool usable() const { return redis_.all_up() && loaded(); }
    void load_scripts_after_noscript(uint16_t slot);
    bool issue_change(const std::shared_ptr<SendJob> &job, uint16_t slot, plugin::AsyncRedis::Callback done,
                      const plugin::Redirect *ask);
    void complete_change(SendJob &job, const redisReply *r);
    struct Lookup;
    void looked_up(const std::shared_ptr<Lookup> &l);
    void queue_wait(plugin::AsyncRedis &node);
    void replicated(plugin::AsyncRedis &node, const redisReply *r);

    const ChatContext &ctx_;
    ReadWorker &reads_;
    plugin::AsyncCluster redis_;
    const std::string send_script_, change_script_;  // kSendScript, kChangeScript; with SPUBLISH in cluster mode
    std::string send_sha_, read_sha_, change_sha_;  // empty until SCRIPT LOAD answered
    std::string receipts_sha_;  // kReceiptsScript; a failed flush costs only its events
    bool reloading_receipts_ = false;  // a SCRIPT LOAD of it is on its way
    // Read positions waiting to be published: room -> userId -> (username, id),
    // the newest of each reader; and when each room last published.
    std::map<std::string, std::map<std::string, std::pair<std::string, std::string>>> receipts_;
    std::map<std::string, Clock::time_point> receipts_sent_;
    // presence entries of this process: (conn, room) -> member
    std::map<std::pair<aurora_conn_id, std::string>, std::string> members_;
    PresenceCoalescer events_;
    aurora_timer *coalesce_timer_ = nullptr, *refresh_timer_ = nullptr;
    const std::string dedup_window_arg_, stream_maxlen_arg_;  // the send script's last two arguments, once
    const std::string state_ttl_arg_, max_emojis_arg_, max_reactions_arg_, max_changes_arg_;  // the change script's
    const std::string receipts_ttl_arg_;
    // wait_replicas: messages stored whose answer waits for the WAIT queued
    // after them on the same master (replies come in order: every one held
    // when a WAIT answers was sent before it). One per master in cluster
    // mode: a WAIT counts the replicas of the master it runs on.
    struct Held {
        aurora_msg *msg;    // PENDING (a held job is always a message), or nullptr with `done`
        std::string reply;  // the answer once replicated (empty: none, the seed's plain message)
        std::function<void(const SendResult &)> done;
        SendResult result;  // for `done`
    };
    struct WaitState {
        std::vector<Held> held;
        bool due = false;        // a message went out since the last WAIT
        bool in_flight = false;  // a WAIT is queued and not answered
    };
    std::map<plugin::AsyncRedis *, WaitState> waits_;
    const std::string wait_replicas_arg_, wait_timeout_arg_;
};

}  // namespace aurora::chat
