// Attachments (setting `uploads`): files in MongoDB GridFS, referenced from
// messages.
//
//   POST /api/uploads?name=<file name>     body: the file's bytes
//       Authorization: Bearer <token>; Content-Type: what the client
//       believes it is (optional; checked against the bytes).
//       201 {"id","url","fileType","size","filename"}
//   GET|HEAD /api/uploads/<id>             Authorization: Bearer <token>
//       200 the bytes, with the sniffed type, Content-Disposition (images
//       inline, the rest as attachments), X-Content-Type-Options: nosniff
//       and a sandboxing Content-Security-Policy.
//
// The type is sniffed from the bytes (content_sniff.h); a declared type
// that differs is refused (415), as is a type not in upload_types. Each
// user keeps at most upload_quota_bytes (413 past it). The body limit and
// time are the route's own (ABI 1.3 http_route_limits): upload_max_bytes
// and upload_timeout_ms.
//
// Attaching: once stored, the upload is described in Redis,
// chat:upload:<id> = {"userId","fileType","size","filename"} for
// upload_attach_s; the chat plugin reads it when a message names the id in
// `attachments`, checks the sender is its owner, and puts the description
// into the message (docs/protocol.md, Attachments).
//
// Ids are 128 random bits: knowing one is what lets a signed-in user fetch
// the file, as in the messages that name it.
//
// Thread contract: handle_* run on the service thread (no I/O); jobs go to
// the upload threads through a JobQueue; each request is answered exactly
// once, by an upload thread (or at shutdown, 503).
#pragma once

#include <aurora/aurora.h>

#include <memory>
#include <string>

#include "ingest_context.h"
#include "job_queue.h"
#include "redis_router.h"
#include "token_trust.h"
#include "upload_store.h"

namespace aurora::ingest {

class UploadService {
public:
    UploadService(IngestContext &ctx, const plugin::TokenTrust &trust);
    // Main thread, during init: the routes and the threads.
    aurora_status start();

private:
    struct Job {
        aurora_http_req *req = nullptr;
        bool upload = false;  // else a download
        std::string user_id, id, filename, declared_type;
    };
    static void http_handler(void *self, aurora_http_req *req);
    static void worker_main(aurora_worker *w, void *self);
    void handle(aurora_http_req *req, bool upload);
    void run(aurora_worker *w);
    void store(Job &job, plugin::RedisRouter &redis);
    void serve(Job &job);
    void reply_error(aurora_http_req *req, uint16_t status, const std::string &message, std::string_view headers = {});

    IngestContext &ctx_;
    const plugin::TokenTrust &trust_;
    std::unique_ptr<UploadStore> store_;
    plugin::JobQueue<Job> jobs_;
};

}  // namespace aurora::ingest
