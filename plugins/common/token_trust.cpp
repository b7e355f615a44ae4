#include "token_trust.h"

#include <curl/curl.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <mutex>

#include "json.h"

namespace aurora::plugin {

namespace {

constexpr size_t kMaxKeysBytes = 1 << 20;   // a JWKS document or PEM file larger than this is refused
constexpr int64_t kKidMissMinMs = 10000;    // a token with an unknown kid refreshes the keys at most this often
constexpr int64_t kRetryMs = 5000;          // after a failed fetch or read
constexpr long kFetchTimeoutMs = 5000;
constexpr long kFirstFetchTimeoutMs = 2000;  // during init, per plugin that reads tokens

std::string setting(const aurora_host_api *host, aurora_plugin_ctx *self, const char *key) {
    return std::string(view(host->setting(self, key)));
}

size_t append_body(char *data, size_t size, size_t n, void *arg) {
    auto *body = static_cast<std::string *>(arg);
    if (body->size() + size * n > kMaxKeysBytes) return 0;  // aborts the transfer
    body->append(data, size * n);
    return size * n;
}

// libcurl's progress callback: non-zero aborts the transfer.
int on_progress(void *arg, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    return static_cast<const TokenTrust *>(arg)->stopping() ? 1 : 0;
}

struct CurlFree {
    void operator()(CURL *c) const { curl_easy_cleanup(c); }
};

}  // namespace

std::unique_ptr<TokenTrust> TokenTrust::create(const aurora_host_api *host, aurora_plugin_ctx *self,
                                               std::string secret, jwt_alg_t hmac_alg, std::string &error) {
    auto t = std::make_unique<TokenTrust>(Pass{}, host, self);
    t->policy_.secret = std::move(secret);
    t->policy_.hmac_alg = hmac_alg;
    t->policy_.issuer = setting(host, self, "jwt.issuer");
    t->policy_.audience = setting(host, self, "jwt.audience");
    if (std::string c = setting(host, self, "jwt.user_id_claim"); !c.empty()) t->policy_.user_id_claim = c;
    if (std::string c = setting(host, self, "jwt.username_claim"); !c.empty()) t->policy_.username_claim = c;
    t->keys_file_ = setting(host, self, "jwt.keys_file");
    t->jwks_url_ = setting(host, self, "jwt.jwks_url");
    if (std::string r = setting(host, self, "jwt.keys_refresh_s"); !r.empty())
        t->refresh_ms_ = std::strtoll(r.c_str(), nullptr, 10) * 1000;  // the host checked the range
    if (!t->keys_file_.empty() && !t->jwks_url_.empty()) {
        error = "jwt.keys_file and jwt.jwks_url: set one of them";
        return nullptr;
    }
    if (!t->has_key_source()) return t;

    t->loads_ok_ = host->metric_counter(self, "token_key_loads_total", "Loads of the identity provider's keys",
                                        "result=\"ok\"");
    t->loads_failed_ = host->metric_counter(self, "token_key_loads_total", "Loads of the identity provider's keys",
                                            "result=\"failed\"");
    if (!t->keys_file_.empty()) {
        if (!t->read_file(error)) {
            error = "jwt.keys_file " + t->keys_file_ + ": " + error;
            return nullptr;
        }
    } else {
        static std::once_flag curl_once;
        std::call_once(curl_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
        std::string why;
        if (!t->fetch_url(why))  // the provider may come up later: retried by the refresher
            t->h_.log(AURORA_LOG_WARN, "jwt.jwks_url %s: %s; key-signed tokens are refused until it loads",
                   t->jwks_url_.c_str(), why.c_str());
    }
    return t;
}

aurora_status TokenTrust::start() {
    if (!has_key_source()) return AURORA_OK;
    return h_.host->spawn(h_.self, "token-keys", &TokenTrust::run, this);
}

void TokenTrust::run(aurora_worker *w, void *arg) { static_cast<TokenTrust *>(arg)->refresh_loop(w); }

void TokenTrust::refresh_loop(aurora_worker *w) {
    worker_.store(w);
    const int64_t start = static_cast<int64_t>(h_.host->now_monotonic_ns() / 1000000);
    int64_t next_full = start + refresh_ms_, last_forced = start - kKidMissMinMs;
    bool failed = !jwks_url_.empty() && !fetched_;
    int64_t next_retry = start + kRetryMs;
    for (;;) {
        const int64_t now = static_cast<int64_t>(h_.host->now_monotonic_ns() / 1000000);
        int64_t due = std::min(next_full, failed ? next_retry : next_full);
        // An unknown kid: at once, or as soon as the last forced refresh is
        // kKidMissMinMs old (verify() does not wake us twice for one flag).
        if (kid_missed_.load()) due = std::min(due, last_forced + kKidMissMinMs);
        if (due > now) {
            // Wakes early when verify() met an unknown kid (worker_wake).
            if (h_.host->worker_wait(w, static_cast<uint32_t>(std::min<int64_t>(due - now, 60000)))) break;
            continue;
        }
        const bool forced = kid_missed_.exchange(false);
        if (forced) last_forced = now;
        failed = load(/*force_file=*/false, /*fetch=*/true);
        next_full = now + refresh_ms_;
        next_retry = now + kRetryMs;
    }
    worker_.store(nullptr);
}

bool TokenTrust::load(bool force_file, bool fetch) {
    std::string error;
    bool ok = true;
    if (!keys_file_.empty()) {
        struct stat st{};
        if (stat(keys_file_.c_str(), &st) != 0) {
            ok = false;
            error = "cannot stat the file";
        } else if (force_file || st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec != file_mtime_ns_ ||
                   st.st_size != file_size_) {
            ok = read_file(error);
        }
    } else if (fetch) {
        ok = fetch_url(error);
    }
    if (!ok) {
        h_.host->metric_add(loads_failed_, 1);
        h_.log(AURORA_LOG_ERROR, "%s %s: %s; the keys loaded before stay in use",
            keys_file_.empty() ? "jwt.jwks_url" : "jwt.keys_file",
            keys_file_.empty() ? jwks_url_.c_str() : keys_file_.c_str(), error.c_str());
    }
    return !ok;
}

bool TokenTrust::read_file(std::string &error) {
    struct stat st{};
    if (stat(keys_file_.c_str(), &st) != 0) {
        error = "cannot stat the file";
        return false;
    }
    if (st.st_size > static_cast<off_t>(kMaxKeysBytes)) {
        error = "larger than 1 MiB";
        return false;
    }
    std::ifstream in(keys_file_, std::ios::binary);
    if (!in) {
        error = "cannot be read";
        return false;
    }
    // At most one byte past the limit, whatever stat said (a file that grows, a FIFO).
    std::string text(kMaxKeysBytes + 1, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxKeysBytes) {
        error = "larger than 1 MiB";
        return false;
    }
    std::optional<KeySet> keys = parse_keys(text, error);
    if (!keys) return false;
    file_mtime_ns_ = st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    file_size_ = st.st_size;
    install(std::move(*keys), keys_file_.c_str());
    return true;
}

bool TokenTrust::fetch_url(std::string &error) {
    std::unique_ptr<CURL, CurlFree> curl(curl_easy_init());
    if (!curl) {
        error = "cannot start a transfer";
        return false;
    }
    std::string body;
    char curl_error[CURL_ERROR_SIZE] = {0};
    CURL *c = curl.get();
    // At start-up (no refresher yet) a provider that is down must not hold
    // the host's start for long; later, a stop ends a transfer at once.
    const long timeout_ms = worker_.load() ? kFetchTimeoutMs : kFirstFetchTimeoutMs;
    if (curl_easy_setopt(c, CURLOPT_URL, jwks_url_.c_str()) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK) {
        error = "libcurl refuses the URL or cannot limit it to http and https";
        return false;
    }
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, this);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "aurora-token-keys");
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_error);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, append_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
        error = rc == CURLE_WRITE_ERROR            ? "the answer is larger than 1 MiB"
                : rc == CURLE_ABORTED_BY_CALLBACK ? "stopped (shutting down)"
                                        : std::string(curl_error[0] ? curl_error : curl_easy_strerror(rc));
        return false;
    }
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        error = "HTTP status " + std::to_string(status);
        return false;
    }
    std::optional<KeySet> keys = parse_keys(body, error);
    if (!keys) return false;
    fetched_ = true;
    install(std::move(*keys), jwks_url_.c_str());
    return true;
}

bool TokenTrust::stopping() const {
    aurora_worker *w = worker_.load();  // the refresher's own thread runs its transfers
    return w && h_.host->worker_should_stop(w);
}

void TokenTrust::install(KeySet keys, const char *from) {
    const size_t n = keys.keys.size();
    const int skipped = keys.skipped;
    auto next = std::make_shared<const KeySet>(std::move(keys));
    {
        std::lock_guard lock(mu_);
        keys_ = std::move(next);
    }
    h_.host->metric_add(loads_ok_, 1);
    h_.log(AURORA_LOG_INFO, "token keys from %s: %zu in use%s", from, n,
        skipped ? (", " + std::to_string(skipped) + " encryption key(s) skipped").c_str() : "");
}

VerifiedToken TokenTrust::verify_request(const aurora_host_api *host, const aurora_http_req *req,
                                         int64_t leeway_s) const {
    std::string_view auth = view(host->http_header(req, "authorization"));
    std::string_view token;
    if (auth.size() > 7 && (auth.substr(0, 7) == "Bearer " || auth.substr(0, 7) == "bearer ")) token = auth.substr(7);
    VerifiedToken v = verify(token, static_cast<int64_t>(host->now_wall_ms() / 1000), leeway_s);
    if (!v.ok) v.error = token.empty() ? "missing bearer token" : "invalid token: " + v.error;
    return v;
}

VerifiedToken TokenTrust::verify(std::string_view token, int64_t now_s, int64_t leeway_s) const {
    std::shared_ptr<const KeySet> keys;
    {
        std::lock_guard lock(mu_);
        keys = keys_;
    }
    VerifiedToken v = verify_token(token, policy_, keys.get(), now_s, leeway_s);
    if (v.unknown_kid && has_key_source() && !kid_missed_.exchange(true))
        if (aurora_worker *w = worker_.load()) h_.host->worker_wake(w);
    return v;
}

size_t TokenTrust::key_count() const {
    std::lock_guard lock(mu_);
    return keys_ ? keys_->keys.size() : 0;
}


}  // namespace aurora::plugin
