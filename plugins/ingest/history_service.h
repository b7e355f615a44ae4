// History for clients: GET /api/rooms/{room}/messages?before=<id>&limit=<n>
// (Authorization: Bearer <token>, verified like the auth plugin does) and the
// WebSocket request {"type":"history","room":R,"before"?:ID,"limit"?:N}.
// Requests are checked on the service thread (no I/O there), then queued to
// the plugin's history threads, which query MongoDB and answer with
// http_reply / msg_set_reply + msg_resume.
//
// Thread contract: handle_http and on_message run on the service thread;
// jobs go to the history threads through a JobQueue; each job is answered
// exactly once, by a history thread (or at shutdown, with "unavailable").
#pragma once

#include <aurora/aurora.h>

#include <optional>
#include <string>
#include <vector>

#include "ingest_context.h"
#include "job_queue.h"
#include "token_trust.h"
#include "stream_entry.h"

namespace aurora::ingest {

class HistoryService {
public:
    // `trust` checks the REST route's bearer tokens; it outlives the service.
    HistoryService(IngestContext &ctx, const plugin::TokenTrust &trust)
        : ctx_(ctx), trust_(trust), jobs_(ctx.host, ctx.s.history_max_queue) {}
    // Main thread, during init: the route and the threads.
    aurora_status start();
    // Service thread: CONTINUE unless the frame is a history request.
    aurora_verdict on_message(aurora_conn *conn, aurora_msg *msg);

private:
    struct Job {
        aurora_http_req *req = nullptr;  // exactly one of req / msg
        aurora_msg *msg = nullptr;
        std::string room, user_id;
        std::optional<StreamId> before;
        size_t limit = 0;
        std::string ref_json;
        uint64_t start_ns = 0;
        // A search (setting `search`): the query as given, and its words.
        bool search = false;
        std::string query;
        std::vector<std::string> words;
    };
    static void http_handler(void *self, aurora_http_req *req);
    static void worker_main(aurora_worker *w, void *self);
    void handle_http(aurora_http_req *req);
    void run(aurora_worker *w);
    void answer(Job &job);
    void fail(Job &job, uint16_t status, const char *code, const std::string &message);

    IngestContext &ctx_;
    const plugin::TokenTrust &trust_;
    plugin::JobQueue<Job> jobs_;
};

}  // namespace aurora::ingest
