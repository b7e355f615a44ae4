#include "redis_connection.h"

#include <algorithm>
#include <charconv>

namespace aurora::plugin {

std::optional<RedisUrl> parse_redis_url(std::string_view url, std::string &error) {
    constexpr std::string_view scheme = "redis://";
    if (!url.starts_with(scheme)) {
        error = "redis url must start with redis://";
        return std::nullopt;
    }
    RedisUrl out;
    std::string_view rest = url.substr(scheme.size());
    if (size_t at = rest.rfind('@'); at != std::string_view::npos) {
        std::string_view cred = rest.substr(0, at);
        size_t colon = cred.find(':');
        out.password = std::string(colon == std::string_view::npos ? cred : cred.substr(colon + 1));
        rest = rest.substr(at + 1);
    }
    std::string_view hostport = rest.substr(0, rest.find('/'));
    std::string_view db = rest.size() > hostport.size() ? rest.substr(hostport.size() + 1) : std::string_view();
    std::string_view port;
    if (size_t colon = hostport.rfind(':'); colon != std::string_view::npos) {
        port = hostport.substr(colon + 1);
        hostport = hostport.substr(0, colon);
    }
    if (!hostport.empty()) out.host = std::string(hostport);
    auto number = [&](std::string_view s, int &v, int lo, int hi) {
        auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        return ec == std::errc() && p == s.data() + s.size() && v >= lo && v <= hi;
    };
    if (!port.empty() && !number(port, out.port, 1, 65535)) {
        error = "bad port in redis url";
        return std::nullopt;
    }
    if (!db.empty() && !number(db, out.db, 0, 1 << 16)) {
        error = "bad database number in redis url";
        return std::nullopt;
    }
    return out;
}

RedisConnection::RedisConnection(RedisUrl url, std::chrono::milliseconds timeout)
    : url_(std::move(url)), timeout_(timeout) {}

RedisConnection::~RedisConnection() { reset(); }

void RedisConnection::reset() {
    if (ctx_) redisFree(ctx_);
    ctx_ = nullptr;
    pending_ = 0;
}

bool RedisConnection::ensure(std::string &error) {
    if (ctx_) return true;
    auto now = std::chrono::steady_clock::now();
    if (now < next_attempt_) {
        error = "redis unavailable (reconnecting)";
        return false;
    }
    timeval tv{static_cast<time_t>(timeout_.count() / 1000), static_cast<suseconds_t>((timeout_.count() % 1000) * 1000)};
    redisContext *c = redisConnectWithTimeout(url_.host.c_str(), url_.port, tv);
    auto fail = [&](std::string why) {
        if (c) redisFree(c);
        error = "redis " + url_.host + ":" + std::to_string(url_.port) + ": " + why;
        backoff_ = std::min<std::chrono::milliseconds>(std::max<std::chrono::milliseconds>(backoff_ * 2, std::chrono::milliseconds(50)),
                                                       std::chrono::milliseconds(2000));
        next_attempt_ = now + backoff_;
        return false;
    };
    if (!c || c->err) return fail(c ? c->errstr : "out of memory");
    redisSetTimeout(c, tv);
    ctx_ = c;
    // AUTH / SELECT: on an I/O error command() has already freed the context
    // (reset()); on an error reply it is still ours to free.
    auto handshake = [&](const std::vector<std::string> &argv) {
        RedisReply r = command(argv, error);
        if (r && r->type != REDIS_REPLY_ERROR) return true;
        std::string why = r ? std::string(r->str, r->len) : error;
        if (!ctx_) c = nullptr;  // already freed by reset()
        ctx_ = nullptr;
        fail(why);
        return false;
    };
    if (!url_.password.empty() && !handshake({"AUTH", url_.password})) return false;
    if (url_.db != 0 && !handshake({"SELECT", std::to_string(url_.db)})) return false;
    backoff_ = std::chrono::milliseconds(0);
    return true;
}

namespace {
void to_argv(const std::vector<std::string> &argv, std::vector<const char *> &p, std::vector<size_t> &l) {
    p.resize(argv.size());
    l.resize(argv.size());
    for (size_t i = 0; i < argv.size(); ++i) {
        p[i] = argv[i].data();
        l[i] = argv[i].size();
    }
}
}  // namespace

RedisReply RedisConnection::command(const std::vector<std::string> &argv, std::string &error) {
    if (!ctx_) {
        error = "redis not connected";
        return nullptr;
    }
    std::vector<const char *> p;
    std::vector<size_t> l;
    to_argv(argv, p, l);
    RedisReply r(static_cast<redisReply *>(redisCommandArgv(ctx_, static_cast<int>(p.size()), p.data(), l.data())));
    if (!r) {
        error = std::string("redis: ") + (ctx_->errstr[0] ? ctx_->errstr : "I/O error");
        reset();
    }
    return r;
}

void RedisConnection::append(const std::vector<std::string> &argv) {
    if (!ctx_) return;
    std::vector<const char *> p;
    std::vector<size_t> l;
    to_argv(argv, p, l);
    if (redisAppendCommandArgv(ctx_, static_cast<int>(p.size()), p.data(), l.data()) == REDIS_OK) ++pending_;
}

RedisReply RedisConnection::read(std::string &error) {
    if (!ctx_ || pending_ == 0) {
        error = ctx_ ? "no reply pending" : "redis not connected";
        return nullptr;
    }
    void *raw = nullptr;
    if (redisGetReply(ctx_, &raw) != REDIS_OK || !raw) {
        error = std::string("redis: ") + (ctx_->errstr[0] ? ctx_->errstr : "I/O error");
        reset();
        return nullptr;
    }
    --pending_;
    return RedisReply(static_cast<redisReply *>(raw));
}

}  // namespace aurora::plugin
