// The send pipeline: the plugin thread that talks to Redis for everything a
// client asks that writes (messages, read markers, typing, presence).
//
// The service thread submit()s jobs and never waits. The thread takes every
// job queued so far, appends all their commands to one connection, then
// reads all replies: one round trip per batch, so batches grow with load
// (DESIGN §3). A message stays PENDING in the host until its reply, then is
// resumed with an ack or an error. While Redis is unreachable every job
// that has a waiting client is answered `unavailable`: never dropped
// silently, never acked. Every job costs O(1) commands: reads whose size a
// client chooses (presence snapshots, resume ranges) are the read worker's
// (read_worker.h), and presence events go out coalesced per room
// (presence_coalescer.h), each window's in one round trip of their own.
//
// Thread contract: submit() from any thread (a JobQueue); everything else on
// the pipeline's own thread.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "chat_context.h"
#include "job_queue.h"
#include "presence_coalescer.h"
#include "read_worker.h"
#include "redis_connection.h"

namespace aurora::chat {

struct SendJob {
    enum class Kind { Message, Typing, Read, PresenceJoin, PresenceLeave } kind;
    explicit SendJob(Kind k) : kind(k) {}
    aurora_msg *msg = nullptr;  // owned (PENDING) until resumed; Message, Read
    aurora_conn_id conn = 0;
    std::string room, user_id, username, text, ref_value, ref_json, id;
    std::chrono::steady_clock::time_point queued = std::chrono::steady_clock::now();
};

class SendPipeline {
public:
    // `reads` gets a join's snapshot once the member is stored.
    SendPipeline(const ChatContext &ctx, ReadWorker &reads);
    void submit(SendJob job);
    void run(aurora_worker *w);  // the thread's body (host->spawn)
    bool redis_ok() const { return redis_ok_.load(); }

private:
    void process(std::vector<SendJob> &batch, bool retried = false);
    bool load_scripts(std::string &err);
    size_t append(const SendJob &job);
    void complete(SendJob &job, std::vector<plugin::RedisReply> &replies);
    void fail(SendJob &job, const char *code, const std::string &why);
    void refresh_presence();
    void publish_presence(PresenceCoalescer::Clock::time_point now);
    std::string member(const SendJob &job) const;
    void finish(aurora_msg *msg, const std::string &reply);

    const ChatContext &ctx_;
    ReadWorker &reads_;
    plugin::RedisConnection redis_;
    std::string send_sha_, read_sha_;
    std::atomic<bool> redis_ok_{false};
    // [pipeline thread] presence entries of this process: (conn, room) -> member
    std::map<std::pair<aurora_conn_id, std::string>, std::string> members_;
    PresenceCoalescer events_;  // [pipeline thread]

    // Never closed: what is submitted after the thread stopped is freed with
    // the plugin (the host resumes nothing any more then).
    plugin::JobQueue<SendJob> jobs_;
};

}  // namespace aurora::chat
