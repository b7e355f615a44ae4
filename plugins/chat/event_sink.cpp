#include "event_sink.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <mutex>

#include "chat_protocol.h"

namespace aurora::chat {

namespace {

constexpr int64_t kMaxBackoffMs = 30000;

struct CurlFree {
    void operator()(CURL *c) const { curl_easy_cleanup(c); }
};
struct SlistFree {
    void operator()(curl_slist *l) const { curl_slist_free_all(l); }
};

// The receiver's answer is not read, only bounded.
size_t discard(char *, size_t size, size_t n, void *arg) {
    auto *got = static_cast<size_t *>(arg);
    *got += size * n;
    return *got > (64u << 10) ? 0 : size * n;
}

std::string hex_hmac(const std::string &key, const std::string &text) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char *>(text.data()),
         text.size(), mac, &len);
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < len; ++i) {
        out += digits[mac[i] >> 4];
        out += digits[mac[i] & 15];
    }
    return out;
}

std::string who(aurora_conn_id conn, const std::string &user_id, const std::string &username) {
    return "\"conn\":" + std::to_string(conn) + ",\"user_id\":" + quoted(user_id) + ",\"username\":" + quoted(username);
}

}  // namespace

EventSink::EventSink(const ChatContext &ctx)
    : ctx_(ctx),
      queue_(ctx.host, static_cast<size_t>(ctx.s.webhook_queue_max)),
      maxlen_arg_(std::to_string(ctx.s.events_stream_maxlen)) {}

EventSink::~EventSink() = default;

bool EventSink::start() {
    const aurora_host_api *h = ctx_.host;
    const ChatSettings &s = ctx_.s;
    emitted_ = h->metric_counter(ctx_.self, "events_total", "Events emitted (connect, disconnect, join, leave, message)", nullptr);
    if (!s.events_stream.empty()) {
        stream_errors_ = h->metric_counter(ctx_.self, "events_stream_errors_total",
                                           "Events not added to events_stream (Redis unavailable)", nullptr);
        stream_ = std::make_unique<plugin::AsyncRedis>(ctx_, ctx_.redis_url,
                                                       std::chrono::milliseconds(s.redis_timeout_ms), 65536, "events");
        if (!stream_->start()) {
            ctx_.log(AURORA_LOG_ERROR, "events: cannot start the events_stream connection");
            return false;
        }
    }
    if (s.webhook_url.empty()) return true;
    const char *env = std::getenv("AURORA_WEBHOOK_SECRET");
    if (env && *env && !s.webhook_secret.empty()) {
        ctx_.log(AURORA_LOG_ERROR, "config: the webhook secret is given twice: webhook_secret and AURORA_WEBHOOK_SECRET");
        return false;
    }
    secret_ = env && *env ? env : s.webhook_secret;
    if (secret_.size() < 32) {
        ctx_.log(AURORA_LOG_ERROR, "config: webhook_url needs a secret of at least 32 bytes (webhook_secret or "
                                   "AURORA_WEBHOOK_SECRET): receivers check each batch's signature with it");
        return false;
    }
    if (!s.webhook_url.starts_with("http://") && !s.webhook_url.starts_with("https://")) {
        ctx_.log(AURORA_LOG_ERROR, "config: webhook_url must be an http:// or https:// URL");
        return false;
    }
    static std::once_flag curl_once;
    std::call_once(curl_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    delivered_ = h->metric_counter(ctx_.self, "webhook_delivered_total", "Events the webhook answered 2xx for", nullptr);
    failed_attempts_ = h->metric_counter(ctx_.self, "webhook_failed_attempts_total",
                                         "Webhook POSTs that failed (no answer, or not 2xx)", nullptr);
    dead_letters_ = h->metric_counter(ctx_.self, "webhook_dead_letters_total",
                                      "Events given up after webhook_max_attempts (or left at shutdown)", nullptr);
    dropped_ = h->metric_counter(ctx_.self, "webhook_dropped_total", "Events dropped: the webhook queue was full", nullptr);
    queued_ = h->metric_gauge(ctx_.self, "webhook_queued", "Events waiting for the webhook", nullptr);
    spawned_ = true;  // from here the thread may run, even if spawn reports a failure
    if (h->spawn(ctx_.self, "webhook", [](aurora_worker *w, void *p) { static_cast<EventSink *>(p)->run(w); }, this) !=
        AURORA_OK) {
        ctx_.log(AURORA_LOG_ERROR, "events: cannot start the webhook thread");
        return false;
    }
    return true;
}

void EventSink::emit(const char *type, const std::string &fields) {
    const uint64_t now = ctx_.host->now_wall_ms();
    std::string json = "{\"id\":\"" + ctx_.replica + "-" + std::to_string(++seq_) + "\",\"type\":\"" + type +
                       "\",\"ts\":" + std::to_string(now) + ",\"replica\":\"" + ctx_.replica + "\"," + fields + "}";
    ctx_.host->metric_add(emitted_, 1);
    if (stream_) {
        bool queued = stream_->up() && stream_->command({"XADD", ctx_.s.events_stream, "MAXLEN", "~", maxlen_arg_, "*",
                                                         "type", type, "event", json},
                                                        [this](const redisReply *r) {
                                                            if (!r || r->type == REDIS_REPLY_ERROR)
                                                                ctx_.host->metric_add(stream_errors_, 1);
                                                        });
        if (!queued) ctx_.host->metric_add(stream_errors_, 1);
    }
    if (!ctx_.s.webhook_url.empty()) {
        ctx_.host->metric_add(queued_, 1);  // before: the webhook's thread may take it at once
        if (!queue_.post(std::move(json))) {
            ctx_.host->metric_add(queued_, -1);
            ctx_.host->metric_add(dropped_, 1);  // full (or, at shutdown, closed)
        }
    }
}

void EventSink::connected(aurora_conn_id conn, const std::string &user_id, const std::string &username) {
    emit("connect", who(conn, user_id, username));
}

void EventSink::disconnected(aurora_conn_id conn, const std::string &user_id, const std::string &username) {
    emit("disconnect", who(conn, user_id, username));
}

void EventSink::joined(aurora_conn_id conn, const std::string &user_id, const std::string &username,
                       const std::string &room) {
    emit("join", who(conn, user_id, username) + ",\"room\":" + quoted(room));
}

void EventSink::left(aurora_conn_id conn, const std::string &user_id, const std::string &username,
                     const std::string &room) {
    emit("leave", who(conn, user_id, username) + ",\"room\":" + quoted(room));
}

void EventSink::stored(const std::string &room, const std::string &user_id, const std::string &username,
                       const std::string &message_id, const std::string &text) {
    emit("message", "\"user_id\":" + quoted(user_id) + ",\"username\":" + quoted(username) + ",\"room\":" +
                        quoted(room) + ",\"message_id\":" + quoted(message_id) + ",\"text\":" + quoted(text));
}

// ---- the webhook's thread ----

namespace {

struct Transfer {
    const aurora_host_api *host;
    aurora_worker *w;  // nullptr: not cut short
};

// libcurl's progress callback: non-zero aborts the transfer (a stop asked).
int on_progress(void *arg, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    const auto *t = static_cast<const Transfer *>(arg);
    return t->w && t->host->worker_should_stop(t->w) ? 1 : 0;
}

}  // namespace

bool EventSink::deliver(const std::string &body, const std::string &delivery, std::string &why, aurora_worker *w,
                        int64_t timeout_ms) {
    std::unique_ptr<CURL, CurlFree> curl(curl_easy_init());
    if (!curl) {
        why = "curl_easy_init failed";
        return false;
    }
    const std::string t = std::to_string(static_cast<long long>(std::time(nullptr)));
    curl_slist *list = nullptr;
    for (const std::string &line :
         {std::string("Content-Type: application/json"), "X-Aurora-Delivery: " + delivery,
          "X-Aurora-Signature: t=" + t + ",v1=" + hex_hmac(secret_, t + "." + body), std::string("Expect:")}) {
        curl_slist *l = curl_slist_append(list, line.c_str());
        if (!l) {
            curl_slist_free_all(list);
            why = "out of memory";
            return false;
        }
        list = l;
    }
    std::unique_ptr<curl_slist, SlistFree> headers(list);
    CURL *c = curl.get();
    char error[CURL_ERROR_SIZE] = {0};
    size_t got = 0;
    curl_easy_setopt(c, CURLOPT_URL, ctx_.s.webhook_url.c_str());
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    Transfer transfer{ctx_.host, w};
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout_ms));
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &transfer);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "aurora-webhook");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &got);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && status >= 200)) {
        why = error[0] ? error : curl_easy_strerror(rc);
        return false;
    }
    if (status < 200 || status > 299) {
        why = "answered " + std::to_string(status);
        return false;
    }
    return true;
}

// Waits `ms` whatever wakes the thread meanwhile (each new event does):
// true once stopping is asked.
bool EventSink::pause(aurora_worker *w, int64_t ms) {
    const aurora_host_api *h = ctx_.host;
    const uint64_t until = h->now_monotonic_ns() + static_cast<uint64_t>(ms) * 1000000;
    for (uint64_t now = h->now_monotonic_ns(); now < until; now = h->now_monotonic_ns()) {
        if (h->worker_wait(w, static_cast<uint32_t>((until - now + 999999) / 1000000))) return true;
    }
    return h->worker_should_stop(w) != 0;
}

void EventSink::run(aurora_worker *w) {
    const aurora_host_api *h = ctx_.host;
    const ChatSettings &s = ctx_.s;
    plugin::JobQueue<std::string>::Attach attach(queue_, w);
    // Stopping: a POST in flight is cut short, and what is left gets short
    // tries, so shutdown waits about 2 x min(webhook_timeout_ms, 2 s) at most.
    const int64_t final_timeout = std::min<int64_t>(s.webhook_timeout_ms, 2000);
    uint64_t batches = 0;
    std::vector<std::string> batch;
    auto body_of = [](const std::vector<std::string> &events) {
        std::string body = "{\"events\":[";
        for (size_t i = 0; i < events.size(); ++i) body += (i ? "," : "") + events[i];
        return body + "]}";
    };
    auto give_up = [&](size_t n, const std::string &why) {
        h->metric_add(dead_letters_, static_cast<double>(n));
        ctx_.log(AURORA_LOG_WARN, "webhook: %zu event(s) dead-lettered: %s", n, why.c_str());
    };
    while (!h->worker_should_stop(w)) {
        batch.clear();
        if (queue_.take(batch, static_cast<size_t>(s.webhook_batch_max)) == 0) {
            h->worker_wait(w, 1000);
            continue;
        }
        h->metric_add(queued_, -static_cast<double>(batch.size()));
        const std::string body = body_of(batch);
        const std::string delivery = ctx_.replica + "-" + std::to_string(++batches);
        int64_t backoff = s.webhook_backoff_ms;
        for (int64_t attempt = 1;; ++attempt) {
            std::string why;
            if (deliver(body, delivery, why, w, s.webhook_timeout_ms)) {
                h->metric_add(delivered_, static_cast<double>(batch.size()));
                break;
            }
            h->metric_add(failed_attempts_, 1);
            if (attempt >= s.webhook_max_attempts) {
                give_up(batch.size(), "after " + std::to_string(attempt) + " attempts: " + why);
                break;
            }
            if (attempt == 1) ctx_.log(AURORA_LOG_WARN, "webhook: delivery %s failed (%s); retrying", delivery.c_str(), why.c_str());
            if (pause(w, backoff)) {  // stopping: one more try, now
                if (!deliver(body, delivery, why, nullptr, final_timeout)) give_up(batch.size(), "at shutdown: " + why);
                else h->metric_add(delivered_, static_cast<double>(batch.size()));
                batch.clear();
                break;
            }
            backoff = std::min(backoff * 2, kMaxBackoffMs);
        }
    }
    // Stopping: what is still queued gets one attempt per batch, until one
    // fails (then the rest is dead-lettered: one short timeout at most, not
    // one per batch).
    std::vector<std::string> rest = queue_.close();
    h->metric_add(queued_, -static_cast<double>(rest.size()));
    const size_t per = static_cast<size_t>(s.webhook_batch_max);
    for (size_t i = 0; i < rest.size(); i += per) {
        std::vector<std::string> part(rest.begin() + static_cast<ptrdiff_t>(i),
                                      rest.begin() + static_cast<ptrdiff_t>(std::min(rest.size(), i + per)));
        std::string why;
        if (!deliver(body_of(part), ctx_.replica + "-" + std::to_string(++batches), why, nullptr, final_timeout)) {
            give_up(rest.size() - i, "at shutdown: " + why);
            break;
        }
        h->metric_add(delivered_, static_cast<double>(part.size()));
    }
}

}  // namespace aurora::chat
