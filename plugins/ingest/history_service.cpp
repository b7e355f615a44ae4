#include "history_service.h"

#include <charconv>
#include <exception>

#include "history_reader.h"
#include "json.h"
#include "room_name.h"
#include "search_tokens.h"
#include "token_verifier.h"

namespace aurora::ingest {

namespace {

constexpr std::string_view kPrefix = "/api/rooms/";
constexpr std::string_view kSuffix = "/messages";
constexpr std::string_view kSearchSuffix = "/search";
constexpr size_t kMaxQueryBytes = 512;

// The words of a query, or an error for the client.
std::optional<std::vector<std::string>> query_words(std::string_view q, std::string &error) {
    if (q.size() > kMaxQueryBytes) {
        error = "'q' is longer than " + std::to_string(kMaxQueryBytes) + " bytes";
        return std::nullopt;
    }
    std::vector<std::string> words = search_tokens(q, kMaxQueryWords + 1);
    if (words.empty()) {
        error = "'q' has no word to search for (letters or digits; ASCII words of two or more)";
        return std::nullopt;
    }
    if (words.size() > kMaxQueryWords) {
        error = "'q' has more than " + std::to_string(kMaxQueryWords) + " words";
        return std::nullopt;
    }
    return words;
}


std::string error_body(const std::string &message) {
    plugin::Json o(cJSON_CreateObject());
    cJSON_AddStringToObject(o.get(), "error", message.c_str());
    return plugin::to_string(o.get());
}


}  // namespace

aurora_status HistoryService::start() {
    const aurora_host_api *host = ctx_.host;
    aurora_status st = host->http_route(ctx_.self, "GET", std::string(kPrefix).c_str(), 1, http_handler, this);
    if (st != AURORA_OK) {
        ctx_.log(AURORA_LOG_ERROR, "cannot route GET %s*: status %d", std::string(kPrefix).c_str(), static_cast<int>(st));
        return st;
    }
    for (int i = 0; i < ctx_.s.history_workers; ++i) {
        std::string name = "history-" + std::to_string(i);
        st = host->spawn(ctx_.self, name.c_str(), worker_main, this);
        if (st != AURORA_OK) return st;
    }
    return AURORA_OK;
}

void HistoryService::http_handler(void *self, aurora_http_req *req) {
    auto *svc = static_cast<HistoryService *>(self);
    try {
        svc->handle_http(req);
    } catch (const std::exception &e) {
        svc->ctx_.log(AURORA_LOG_ERROR, "history route: %s", e.what());
        svc->ctx_.host->http_reply(req, 500, nullptr, aurora_str{}, plugin::str(error_body("internal error")));
    }
}

void HistoryService::handle_http(aurora_http_req *req) {
    const aurora_host_api *host = ctx_.host;
    auto reply = [&](uint16_t status, const std::string &message, std::string_view headers = {}) {
        host->metric_add(ctx_.m.history_rejected, 1);
        host->http_reply(req, status, nullptr, plugin::str(headers), plugin::str(error_body(message)));
    };
    std::string_view path = plugin::view(host->http_path(req));
    const bool search = ctx_.s.search && path.ends_with(kSearchSuffix);
    const std::string_view suffix = search ? kSearchSuffix : kSuffix;
    if (!path.starts_with(kPrefix) || !path.ends_with(suffix) || path.size() <= kPrefix.size() + suffix.size())
        return reply(404, "not found");
    std::string_view room = path.substr(kPrefix.size(), path.size() - kPrefix.size() - suffix.size());
    if (!plugin::valid_room(room)) return reply(400, "a room name is 1-64 characters of A-Z a-z 0-9 _ . : -");

    // Authorization: Bearer <token>, verified in memory (no I/O).
    plugin::VerifiedToken v = trust_.verify_request(host, req, ctx_.s.leeway_s);
    if (!v.ok) return reply(401, v.error, "WWW-Authenticate: Bearer\r\n");

    Job job;
    job.req = req;
    job.room = std::string(room);
    job.user_id = v.user_id;
    job.limit = static_cast<size_t>(ctx_.s.history_default_limit);
    if (search) {
        aurora_str q = host->http_query(req, "q");
        std::string why;
        std::optional<std::vector<std::string>> words = query_words(plugin::view(q), why);
        if (!q.ptr) return reply(400, "search needs 'q', the words to look for");
        if (!words) return reply(400, why);
        job.search = true;
        job.query = std::string(plugin::view(q));
        job.words = std::move(*words);
    }
    // Given is given, empty too: "?before=" is a client's bug, not a first page.
    if (aurora_str b = host->http_query(req, "before"); b.ptr) {
        job.before = StreamId::parse(plugin::view(b));
        if (!job.before) return reply(400, "'before' must be a message id (<ms>-<seq>)");
    }
    if (aurora_str given = host->http_query(req, "limit"); given.ptr) {
        std::string_view l = plugin::view(given);
        int64_t n = 0;
        auto [p, ec] = std::from_chars(l.data(), l.data() + l.size(), n);
        if (ec == std::errc::result_out_of_range && p == l.data() + l.size() && l.front() != '-')
            n = ctx_.s.history_max_limit;  // a positive integer, just a large one: capped like any other
        else if (ec != std::errc() || p != l.data() + l.size() || n < 1)
            return reply(400, "'limit' must be a positive integer");
        job.limit = static_cast<size_t>(std::min<int64_t>(n, ctx_.s.history_max_limit));
    }
    job.start_ns = host->now_monotonic_ns();
    if (!jobs_.post(std::move(job))) reply(503, "history is busy or shutting down; retry later", "Retry-After: 1\r\n");
}

aurora_verdict HistoryService::on_message(aurora_conn *conn, aurora_msg *msg) {
    const aurora_host_api *host = ctx_.host;
    const std::string_view type = plugin::view(host->msg_type(msg));
    if (type != "history" && !(type == "search" && ctx_.s.search)) return AURORA_CONTINUE;
    plugin::Json frame = plugin::parse_json(host->msg_payload(msg));
    if (!frame) return AURORA_CONTINUE;
    const std::string ref_json(plugin::view(host->msg_ref(msg)));  // as the host parsed it
    auto error = [&](const char *code, const std::string &text) {
        host->metric_add(ctx_.m.history_rejected, 1);
        host->msg_reply_error(msg, code, text.c_str());
        return AURORA_REPLY;
    };
    if (plugin::view(host->conn_user_id(conn)).empty())
        return error("unauthorized", "history needs an authenticated connection");
    const char *room = plugin::get_string(frame.get(), "room");
    if (!room) return error("bad_field", "'" + std::string(type) + "' needs 'room'");
    if (!plugin::valid_room(room)) return error("bad_room", "a room name is 1-64 characters of A-Z a-z 0-9 _ . : -");
    Job job;
    job.msg = msg;
    job.room = room;
    job.user_id = std::string(plugin::view(host->conn_user_id(conn)));
    job.ref_json = ref_json;
    job.limit = static_cast<size_t>(ctx_.s.history_default_limit);
    if (type == "search") {
        const cJSON *q = cJSON_GetObjectItemCaseSensitive(frame.get(), "q");
        if (!cJSON_IsString(q)) return error("bad_field", "'search' needs 'q', a string: the words to look for");
        std::string why;
        std::optional<std::vector<std::string>> words = query_words(q->valuestring, why);
        if (!words) return error("bad_query", why);
        job.search = true;
        job.query = q->valuestring;
        job.words = std::move(*words);
    }
    const cJSON *before = cJSON_GetObjectItemCaseSensitive(frame.get(), "before");
    if (before && !cJSON_IsNull(before)) {
        if (!cJSON_IsString(before) || !(job.before = StreamId::parse(before->valuestring)))
            return error("bad_field", "'before' must be a message id (<ms>-<seq>) or null");
    }
    const cJSON *limit = cJSON_GetObjectItemCaseSensitive(frame.get(), "limit");
    if (limit && !cJSON_IsNull(limit)) {
        if (!cJSON_IsNumber(limit) || limit->valuedouble < 1 || limit->valuedouble > 1e9)
            return error("bad_field", "'limit' must be a positive integer");
        job.limit = static_cast<size_t>(std::min<double>(limit->valuedouble, static_cast<double>(ctx_.s.history_max_limit)));
    }
    job.start_ns = host->now_monotonic_ns();
    if (!jobs_.post(std::move(job))) return error("unavailable", "history is busy or shutting down; retry later");
    return AURORA_PENDING;
}

void HistoryService::worker_main(aurora_worker *w, void *self) { static_cast<HistoryService *>(self)->run(w); }

void HistoryService::run(aurora_worker *w) {
    plugin::JobQueue<Job>::Attach attach(jobs_, w);
    while (!ctx_.host->worker_should_stop(w)) {
        if (std::optional<Job> job = jobs_.pop()) answer(*job);
        else ctx_.host->worker_wait(w, 1000);
    }
    for (Job &job : jobs_.close()) fail(job, 503, "unavailable", "the server is shutting down");
}

void HistoryService::fail(Job &job, uint16_t status, const char *code, const std::string &message) {
    const aurora_host_api *host = ctx_.host;
    host->metric_add(ctx_.m.history_errors, 1);
    if (job.req) {
        host->http_reply(job.req, status, nullptr, plugin::str(status == 503 ? "Retry-After: 1\r\n" : ""),
                         plugin::str(error_body(message)));
    } else {
        host->msg_reply_error(job.msg, code, message.c_str());
        host->msg_resume(job.msg, AURORA_REPLY);
    }
}

void HistoryService::answer(Job &job) {
    const aurora_host_api *host = ctx_.host;
    HistoryPage page;
    std::string err;
    bool ok;
    try {
        std::optional<bool> may = may_read_room(*ctx_.mongo, job.room, job.user_id, err);
        if (may && !*may) return fail(job, 403, "not_member", "you are not a member of '" + job.room + "'");
        plugin::Bson extra;
        if (job.search) {  // every word, as a plain string (no regex), and not deleted
            extra.reset(bson_new());
            bson_t tokens, all, status;
            BSON_APPEND_DOCUMENT_BEGIN(extra.get(), "tokens", &tokens);
            BSON_APPEND_ARRAY_BEGIN(&tokens, "$all", &all);
            for (size_t i = 0; i < job.words.size(); ++i) {
                const std::string key = std::to_string(i);
                bson_append_utf8(&all, key.c_str(), static_cast<int>(key.size()), job.words[i].data(),
                                 static_cast<int>(job.words[i].size()));
            }
            bson_append_array_end(&tokens, &all);
            bson_append_document_end(extra.get(), &tokens);
            BSON_APPEND_DOCUMENT_BEGIN(extra.get(), "status", &status);
            BSON_APPEND_UTF8(&status, "$ne", "deleted");
            bson_append_document_end(extra.get(), &status);
        }
        ok = may && read_history(*ctx_.mongo, ctx_.s.collection, job.room, job.before, job.limit, page, err,
                                 extra.get());
    } catch (const std::exception &e) {
        ok = false;
        err = e.what();
    }
    if (!ok) {
        ctx_.log(AURORA_LOG_WARN, "history of %s failed: %s", job.room.c_str(), err.c_str());
        return fail(job, 503, "unavailable", "history is unavailable; retry later");
    }
    std::string body = "{";
    if (job.msg) body += job.search ? "\"type\":\"search\"," : "\"type\":\"history\",";
    body += "\"room\":" + plugin::to_string(plugin::Json(cJSON_CreateString(job.room.c_str())).get());
    if (job.search) body += ",\"q\":" + plugin::json_string(job.query);
    body += ",\"messages\":" + messages_json(page.messages);
    body += ",\"next_before\":" + (page.next_before ? "\"" + *page.next_before + "\"" : std::string("null"));
    if (job.msg && !job.ref_json.empty()) body += ",\"ref\":" + job.ref_json;
    body += "}";
    host->metric_add(ctx_.m.history_requests, 1);
    host->metric_observe(ctx_.m.history_seconds, static_cast<double>(host->now_monotonic_ns() - job.start_ns) / 1e9);
    if (job.req) {
        host->http_reply(job.req, 200, nullptr, aurora_str{}, plugin::str(body));
    } else {
        host->msg_set_reply(job.msg, plugin::str(body));
        host->msg_resume(job.msg, AURORA_REPLY);
    }
}

}  // namespace aurora::ingest
