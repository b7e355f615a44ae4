// Events out (docs/server-api.md, "Events"): what happened on this replica,
// for the product's backends, as JSON objects
//
//     {"id":"<replica>-<n>","type":"connect"|"disconnect"|"join"|"leave"|"message",
//      "ts":<unix ms>,"replica":R,"user_id":U,"username":N
//      [,"conn":C (not for message)][,"room":R][,"message_id":ID,"text":T]}
//
// to either or both of two sinks:
//   - a Redis stream (`events_stream`), one entry per event (fields `type`
//     and `event`), trimmed to about `events_stream_maxlen`: for products
//     that consume streams (XREAD, consumer groups);
//   - a webhook (`webhook_url`): batches of up to `webhook_batch_max`
//     events POSTed as {"events":[...]}, signed
//         X-Aurora-Signature: t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//     with X-Aurora-Delivery naming the batch (the same on every retry, so
//     the receiver can drop a repeat). A batch is retried with backoff
//     (webhook_backoff_ms doubling, at most 30 s) up to webhook_max_attempts;
//     then it is dead-lettered: counted, logged, dropped. Events wait in a
//     bounded queue (webhook_queue_max): past it new events are dropped and
//     counted, never held without bound.
// Delivery is at least once per sink (a batch whose answer was lost is sent
// again), in order per replica, never ordered across replicas. At shutdown
// a POST in flight is cut short and what is left gets one short try.
//
// Thread contract: the emit functions on [service]; the webhook's own
// thread (host->spawn, "webhook") does the HTTP.
#pragma once

#include <aurora/aurora.h>

#include <memory>
#include <string>
#include <vector>

#include "chat_context.h"
#include "job_queue.h"
#include "redis_async.h"

namespace aurora::chat {

class EventSink {
public:
    explicit EventSink(const ChatContext &ctx);
    ~EventSink();
    // init: the stream's connection and the webhook's thread. False after
    // logging why.
    bool start();
    // The webhook's thread runs (on this object: it must outlive the host's join).
    bool spawned() const { return spawned_; }

    void connected(aurora_conn_id conn, const std::string &user_id, const std::string &username);
    void disconnected(aurora_conn_id conn, const std::string &user_id, const std::string &username);
    void joined(aurora_conn_id conn, const std::string &user_id, const std::string &username, const std::string &room);
    void left(aurora_conn_id conn, const std::string &user_id, const std::string &username, const std::string &room);
    // A message stored (the send script's XADD), not a duplicate ref.
    void stored(const std::string &room, const std::string &user_id, const std::string &username,
                const std::string &message_id, const std::string &text);

    // The webhook's thread.
    void run(aurora_worker *w);

private:
    void emit(const char *type, const std::string &fields);
    // One POST. `w`: cut short when its stop is asked (nullptr: never).
    bool deliver(const std::string &body, const std::string &delivery, std::string &why, aurora_worker *w,
                 int64_t timeout_ms);
    bool pause(aurora_worker *w, int64_t ms);

    const ChatContext &ctx_;
    std::unique_ptr<plugin::AsyncRedis> stream_;  // events_stream only
    plugin::JobQueue<std::string> queue_;         // webhook only: one event's JSON each
    std::string secret_;
    std::string maxlen_arg_;
    uint64_t seq_ = 0;  // [service]
    bool spawned_ = false;
    aurora_metric *emitted_ = nullptr, *stream_errors_ = nullptr, *delivered_ = nullptr, *failed_attempts_ = nullptr,
                  *dead_letters_ = nullptr, *dropped_ = nullptr, *queued_ = nullptr;
};

}  // namespace aurora::chat
