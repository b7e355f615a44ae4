#include "upload_service.h"

#include <sys/random.h>

#include <algorithm>
#include <cstdio>
#include <exception>

#include "attachment_rules.h"
#include "content_sniff.h"
#include "json.h"
#include "redis_router.h"

namespace aurora::ingest {

namespace {

constexpr std::string_view kUploads = "/api/uploads";
constexpr std::string_view kOne = plugin::kUploadsPath;
constexpr size_t kIdHex = plugin::kUploadIdHex;

std::string error_body(const std::string &message) {
    plugin::Json o(cJSON_CreateObject());
    cJSON_AddStringToObject(o.get(), "error", message.c_str());
    return plugin::to_string(o.get());
}

// 128 random bits as 32 hex digits; "" if the kernel gave none.
std::string random_id() {
    unsigned char b[kIdHex / 2];
    size_t got = 0;
    while (got < sizeof b) {
        ssize_t n = getrandom(b + got, sizeof b - got, 0);
        if (n <= 0) return {};
        got += static_cast<size_t>(n);
    }
    std::string id(kIdHex, '0');
    for (size_t i = 0; i < sizeof b; ++i) std::snprintf(&id[2 * i], 3, "%02x", b[i]);
    return id;
}

// The media type of a Content-Type header, lower case, without parameters.
std::string media_type(std::string_view v) {
    v = v.substr(0, v.find(';'));
    while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
    while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    std::string out(v);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

// The description a message carries (docs/protocol.md, Attachments), and
// what chat:upload:<id> holds (with userId).
std::string describe(const UploadInfo &u, bool with_owner) {
    plugin::Json o(cJSON_CreateObject());
    cJSON_AddStringToObject(o.get(), "id", u.id.c_str());
    cJSON_AddStringToObject(o.get(), "url", (std::string(kOne) + u.id).c_str());
    cJSON_AddStringToObject(o.get(), "fileType", u.type.c_str());
    cJSON_AddNumberToObject(o.get(), "size", static_cast<double>(u.size));
    cJSON_AddStringToObject(o.get(), "filename", u.filename.c_str());
    if (with_owner) cJSON_AddStringToObject(o.get(), "userId", u.user_id.c_str());
    return plugin::to_string(o.get());
}

}  // namespace

UploadService::UploadService(IngestContext &ctx, const plugin::TokenTrust &trust)
    : ctx_(ctx), trust_(trust), store_(gridfs_store(*ctx.mongo, ctx.s.upload_bucket)),
      jobs_(ctx.host, ctx.s.upload_max_queue) {}

aurora_status UploadService::start() {
    const aurora_host_api *host = ctx_.host;
    if (!AURORA_HOST_HAS(host, http_route_limits)) {
        ctx_.log(AURORA_LOG_ERROR, "uploads need a host with ABI 1.3 (http_route_limits) for their body limit");
        return AURORA_ERR_INVALID;
    }
    const std::string uploads(kUploads), one(kOne);
    aurora_status st = host->http_route(ctx_.self, "POST", uploads.c_str(), 0, http_handler, this);
    if (st == AURORA_OK)
        st = host->http_route_limits(ctx_.self, "POST", uploads.c_str(), 0, static_cast<uint64_t>(ctx_.s.upload_max_bytes),
                                     static_cast<uint32_t>(ctx_.s.upload_timeout_ms));
    if (st == AURORA_OK) st = host->http_route(ctx_.self, "GET", one.c_str(), 1, http_handler, this);
    if (st != AURORA_OK) {
        ctx_.log(AURORA_LOG_ERROR, "cannot route %s: status %d", uploads.c_str(), static_cast<int>(st));
        return st;
    }
    for (int i = 0; i < ctx_.s.upload_workers; ++i) {
        const std::string name = "upload-" + std::to_string(i);
        st = host->spawn(ctx_.self, name.c_str(), worker_main, this);
        if (st != AURORA_OK) return st;
    }
    return AURORA_OK;
}

// Both routes: POST /api/uploads stores, GET and HEAD /api/uploads/<id> serve.
void UploadService::http_handler(void *self, aurora_http_req *req) {
    auto *svc = static_cast<UploadService *>(self);
    try {
        svc->handle(req, plugin::view(svc->ctx_.host->http_method(req)) == "POST");
    } catch (const std::exception &e) {
        svc->ctx_.log(AURORA_LOG_ERROR, "uploads route: %s", e.what());
        svc->reply_error(req, 500, "internal error");
    }
}

void UploadService::reply_error(aurora_http_req *req, uint16_t status, const std::string &message,
                                std::string_view headers) {
    if (status != 503 && status != 500) ctx_.host->metric_add(ctx_.m.upload_rejected, 1);
    ctx_.host->http_reply(req, status, nullptr, plugin::str(headers), plugin::str(error_body(message)));
}

void UploadService::handle(aurora_http_req *req, bool upload) {
    const aurora_host_api *host = ctx_.host;
    Job job;
    job.req = req;
    job.upload = upload;
    if (!upload) {
        std::string_view path = plugin::view(host->http_path(req));
        job.id = std::string(path.substr(std::min(path.size(), kOne.size())));
        if (!plugin::valid_upload_id(job.id)) return reply_error(req, 404, "no such upload");
    }
    plugin::VerifiedToken v = trust_.verify_request(host, req, ctx_.s.leeway_s);
    if (!v.ok) return reply_error(req, 401, v.error, "WWW-Authenticate: Bearer\r\n");
    job.user_id = v.user_id;
    if (upload) {
        if (job.user_id.starts_with("anon-")) return reply_error(req, 403, "anonymous users cannot upload");
        if (plugin::view(host->http_body(req)).empty()) return reply_error(req, 400, "the upload is empty");
        aurora_str name = host->http_query(req, "name");
        if (!name.ptr) return reply_error(req, 400, "an upload needs 'name', its file name (?name=photo.png)");
        std::string why;
        job.filename = upload_filename(plugin::view(name), why);
        if (job.filename.empty()) return reply_error(req, 400, why);
        job.declared_type = media_type(plugin::view(host->http_header(req, "content-type")));
    }
    if (!jobs_.post(std::move(job))) reply_error(req, 503, "uploads are busy or shutting down; retry later", "Retry-After: 1\r\n");
}

void UploadService::worker_main(aurora_worker *w, void *self) { static_cast<UploadService *>(self)->run(w); }

void UploadService::run(aurora_worker *w) {
    plugin::JobQueue<Job>::Attach attach(jobs_, w);
    plugin::RedisRouter redis(ctx_.redis_url, std::chrono::milliseconds(ctx_.s.redis_timeout_ms));
    while (!ctx_.host->worker_should_stop(w)) {
        std::optional<Job> job = jobs_.pop();
        if (!job) {
            ctx_.host->worker_wait(w, 1000);
            continue;
        }
        try {
            if (job->upload) store(*job, redis);
            else serve(*job);
        } catch (const std::exception &e) {
            ctx_.log(AURORA_LOG_ERROR, "uploads: %s", e.what());
            reply_error(job->req, 500, "internal error");
        }
    }
    for (Job &job : jobs_.close()) reply_error(job.req, 503, "the server is shutting down", "Retry-After: 1\r\n");
}

void UploadService::store(Job &job, plugin::RedisRouter &redis) {
    const aurora_host_api *host = ctx_.host;
    const std::string_view body = plugin::view(host->http_body(job.req));
    const std::string_view type = sniff_type(body);
    if (type.empty() || type == "text/html")
        return reply_error(job.req, 415, type.empty() ? "the content is not a type uploads accept"
                                                      : "the content is HTML or markup, which uploads never accept");
    if (!job.declared_type.empty() && job.declared_type != "application/octet-stream" && job.declared_type != type)
        return reply_error(job.req, 415, "the content is " + std::string(type) + ", not " +
                                             job.declared_type.substr(0, 100) + " as declared");
    const auto &allowed = ctx_.s.upload_types;
    if (std::find(allowed.begin(), allowed.end(), type) == allowed.end())
        return reply_error(job.req, 415, std::string(type) + " is not accepted here");

    UploadInfo info;
    info.id = random_id();
    info.user_id = job.user_id;
    info.filename = job.filename;
    info.type = std::string(type);
    info.size = static_cast<int64_t>(body.size());
    std::string err;
    if (info.id.empty()) {
        ctx_.log(AURORA_LOG_ERROR, "uploads: getrandom failed");
        return reply_error(job.req, 500, "internal error");
    }
    if (ctx_.s.upload_quota_bytes > 0) {
        std::optional<int64_t> used = store_->used_bytes(job.user_id, err);
        if (!used) {
            ctx_.log(AURORA_LOG_WARN, "uploads: quota of %s: %s", job.user_id.c_str(), err.c_str());
            return reply_error(job.req, 503, "uploads are unavailable; retry later", "Retry-After: 1\r\n");
        }
        if (*used + info.size > ctx_.s.upload_quota_bytes)
            return reply_error(job.req, 413, "over your upload quota: " + std::to_string(*used) + " of " +
                                                 std::to_string(ctx_.s.upload_quota_bytes) + " bytes used");
    }
    if (!store_->put(info, body, err)) {
        ctx_.log(AURORA_LOG_WARN, "uploads: store %s: %s", info.id.c_str(), err.c_str());
        return reply_error(job.req, 503, "uploads are unavailable; retry later", "Retry-After: 1\r\n");
    }
    // Attachable from now on, by its owner, for upload_attach_s.
    const std::string key = "chat:upload:" + info.id;
    plugin::RedisConnection *c = redis.at(key, err);
    plugin::RedisReply r;
    if (c) r = c->command({"SET", key, describe(info, true), "EX", std::to_string(ctx_.s.upload_attach_s)}, err);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        ctx_.log(AURORA_LOG_WARN, "uploads: describe %s in Redis: %s", info.id.c_str(),
                 r ? std::string(r->str, r->len).c_str() : err.c_str());
        std::string ignored;
        store_->remove(info.id, ignored);
        return reply_error(job.req, 503, "uploads are unavailable; retry later", "Retry-After: 1\r\n");
    }
    host->metric_add(ctx_.m.uploads, 1);
    host->metric_add(ctx_.m.upload_bytes, static_cast<double>(info.size));
    host->http_reply(job.req, 201, nullptr, plugin::str("Location: " + std::string(kOne) + info.id + "\r\n"),
                     plugin::str(describe(info, false)));
}

void UploadService::serve(Job &job) {
    const aurora_host_api *host = ctx_.host;
    UploadInfo info;
    std::string data, err;
    switch (store_->get(job.id, info, data, err)) {
    case UploadStore::Found::No: return reply_error(job.req, 404, "no such upload");
    case UploadStore::Found::Failed:
        ctx_.log(AURORA_LOG_WARN, "uploads: read %s: %s", job.id.c_str(), err.c_str());
        return reply_error(job.req, 503, "uploads are unavailable; retry later", "Retry-After: 1\r\n");
    case UploadStore::Found::Yes: break;
    }
    // The type stored is the sniffed one; a store edited by hand to hold
    // another is served as bytes to save, never rendered.
    auto known = sniffable_types();
    const bool safe = std::find(known.begin(), known.end(), info.type) != known.end();
    const std::string type = !safe ? "application/octet-stream"
                                   : info.type == "text/plain" ? "text/plain; charset=utf-8" : info.type;
    const std::string headers = "Content-Disposition: " + content_disposition(safe ? info.type : "", info.filename) +
                                "\r\nX-Content-Type-Options: nosniff\r\n"
                                "Content-Security-Policy: default-src 'none'; sandbox\r\n"
                                "Cache-Control: private, max-age=86400\r\n";
    host->metric_add(ctx_.m.downloads, 1);
    host->http_reply(job.req, 200, type.c_str(), plugin::str(headers), plugin::str(data));
}

}  // namespace aurora::ingest
