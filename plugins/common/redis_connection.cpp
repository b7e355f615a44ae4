#include "redis_connection.h"

#include "cluster_slots.h"

#include <algorithm>
#include <charconv>
#include <memory>

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

std::optional<HostPort> parse_host_port(std::string_view text) {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    std::string_view host = text.substr(0, colon), port = text.substr(colon + 1);
    if (host.front() == '[') {
        if (host.size() < 3 || host.back() != ']') return std::nullopt;
        host = host.substr(1, host.size() - 2);
    } else if (host.find(':') != std::string_view::npos) {
        return std::nullopt;  // a v6 address needs its brackets
    }
    HostPort out{std::string(host), 0};
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), out.port);
    if (ec != std::errc() || p != port.data() + port.size() || out.port < 1 || out.port > 65535) return std::nullopt;
    return out;
}

namespace {
// "h1:p1,h2:p2" (the host checked it; a plugin loaded by another host
// checks again).
bool host_port_list(const std::string &list, const char *key, std::vector<HostPort> &out, std::string &error) {
    for (size_t start = 0; start <= list.size();) {
        size_t comma = std::min(list.find(',', start), list.size());
        std::string_view item = std::string_view(list).substr(start, comma - start);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
        if (!item.empty()) {
            std::optional<HostPort> hp = parse_host_port(item);
            if (!hp) {
                error = std::string(key) + ": \"" + std::string(item) + "\" is not host:port";
                return false;
            }
            out.push_back(*hp);
        }
        start = comma + 1;
    }
    return true;
}
}  // namespace

std::optional<RedisUrl> redis_target(const aurora_host_api *host, aurora_plugin_ctx *self, std::string_view url,
                                     std::string &error, bool cluster_ok) {
    auto setting = [&](const char *key) {
        aurora_str v = host->setting(self, key);
        return std::string(v.ptr ? v.ptr : "", v.len);
    };
    std::string text = url.empty() ? setting("redis.url") : std::string(url);
    if (text.empty()) text = "redis://127.0.0.1:6379/0";
    std::optional<RedisUrl> out = parse_redis_url(text, error);
    if (!out) {
        error = "redis.url: " + error;
        return std::nullopt;
    }
    std::string mode = setting("redis.mode");
    if (!url.empty() || mode.empty() || mode == "single") return out;  // a plugin's own Redis is one server
    if (mode == "cluster") {
        if (!cluster_ok) {
            error = "redis.mode \"cluster\": this plugin does not run on Redis Cluster yet (docs/scaling.md); give it "
                    "its own single Redis or use \"single\" or \"sentinel\"";
            return std::nullopt;
        }
        if (!host_port_list(setting("redis.nodes"), "redis.nodes", out->nodes, error)) return std::nullopt;
        std::string shards = setting("redis.stream_shards");
        auto [p, ec] = std::from_chars(shards.data(), shards.data() + shards.size(), out->stream_shards);
        if (shards.empty()) out->stream_shards = 8;
        else if (ec != std::errc() || p != shards.data() + shards.size() || out->stream_shards < 1 ||
                 out->stream_shards > 1024) {
            error = "redis.stream_shards: \"" + shards + "\" is not a number from 1 to 1024";
            return std::nullopt;
        }
        if (out->nodes.empty()) {
            error = "redis.mode \"cluster\" needs redis.nodes";
            return std::nullopt;
        }
        return out;
    }
    if (mode != "sentinel") {
        error = "redis.mode \"" + mode + "\": this plugin supports \"single\", \"sentinel\" and \"cluster\"";
        return std::nullopt;
    }
    if (!host_port_list(setting("redis.sentinels"), "redis.sentinels", out->sentinels, error)) return std::nullopt;
    out->master_name = setting("redis.master_name");
    if (out->sentinels.empty() || out->master_name.empty()) {
        error = "redis.mode \"sentinel\" needs redis.sentinels and redis.master_name";
        return std::nullopt;
    }
    return out;
}

std::optional<HostPort> master_address(const redisReply *r) {
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[1]->type != REDIS_REPLY_STRING || r->element[0]->len == 0)
        return std::nullopt;
    HostPort out{std::string(r->element[0]->str, r->element[0]->len), 0};
    std::string_view port(r->element[1]->str, r->element[1]->len);
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), out.port);
    if (ec != std::errc() || p != port.data() + port.size() || out.port < 1 || out.port > 65535) return std::nullopt;
    return out;
}

bool role_is_master(const redisReply *r) {
    return r && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 && r->element[0]->type == REDIS_REPLY_STRING &&
           std::string_view(r->element[0]->str, r->element[0]->len) == "master";
}

namespace {
timeval to_timeval(std::chrono::milliseconds t) {
    return timeval{static_cast<time_t>(t.count() / 1000), static_cast<suseconds_t>((t.count() % 1000) * 1000)};
}
}  // namespace

std::optional<HostPort> ask_sentinels(const RedisUrl &url, std::chrono::milliseconds timeout, std::string &error) {
    error = "no sentinel answered";
    for (const HostPort &s : url.sentinels) {
        std::unique_ptr<redisContext, void (*)(redisContext *)> c(
            redisConnectWithTimeout(s.host.c_str(), s.port, to_timeval(timeout)), redisFree);
        std::string where = "sentinel " + s.host + ":" + std::to_string(s.port);
        if (!c || c->err) {
            error = where + ": " + (c ? c->errstr : "out of memory");
            continue;
        }
        redisSetTimeout(c.get(), to_timeval(timeout));
        RedisReply r(static_cast<redisReply *>(
            redisCommand(c.get(), "SENTINEL get-master-addr-by-name %b", url.master_name.data(), url.master_name.size())));
        if (std::optional<HostPort> m = master_address(r.get())) return m;
        error = where + (!r                               ? ": " + std::string(c->errstr)
                         : r->type == REDIS_REPLY_ERROR ? ": " + std::string(r->str, r->len)
                                                          : " does not know master \"" + url.master_name + "\"");
    }
    return std::nullopt;
}

std::optional<HostPort> ask_cluster(const RedisUrl &url, uint16_t slot, std::chrono::milliseconds timeout,
                                    std::string &error) {
    error = "no seed node answered";
    const timeval tv = to_timeval(timeout);
    for (const HostPort &n : url.nodes) {
        std::unique_ptr<redisContext, decltype(&redisFree)> c(redisConnectWithTimeout(n.host.c_str(), n.port, tv),
                                                               redisFree);
        const std::string where = "seed node " + n.host + ":" + std::to_string(n.port);
        if (!c || c->err) {
            error = where + ": " + (c ? c->errstr : "out of memory");
            continue;
        }
        redisSetTimeout(c.get(), tv);
        if (!url.password.empty()) {
            RedisReply auth(static_cast<redisReply *>(
                redisCommand(c.get(), "AUTH %b", url.password.data(), url.password.size())));
            if (!auth || auth->type == REDIS_REPLY_ERROR) {
                error = where + ": AUTH failed";
                continue;
            }
        }
        RedisReply r(static_cast<redisReply *>(redisCommand(c.get(), "CLUSTER SLOTS")));
        SlotMap map;
        if (!r || r->type == REDIS_REPLY_ERROR) {
            error = where + ": " + (!r ? std::string(c->errstr) : std::string(r->str, r->len));
            continue;
        }
        if (!map.load(r.get(), error, n)) continue;
        if (const HostPort *m = map.master(slot)) return *m;
        error = where + ": slot " + std::to_string(slot) + " is not served";
    }
    return std::nullopt;
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
    timeval tv = to_timeval(timeout_);
    redisContext *c = nullptr;
    auto fail = [&](std::string why) {
        if (c) redisFree(c);
        error = "redis " + server_.host + (server_.port ? ":" + std::to_string(server_.port) : "") + ": " + why;
        backoff_ = std::min<std::chrono::milliseconds>(std::max<std::chrono::milliseconds>(backoff_ * 2, std::chrono::milliseconds(50)),
                                                       std::chrono::milliseconds(2000));
        next_attempt_ = now + backoff_;
        return false;
    };
    server_ = HostPort{url_.host, url_.port};
    if (url_.sentinel()) {
        std::optional<HostPort> master = ask_sentinels(url_, timeout_, error);
        if (!master) {
            server_ = HostPort{"master \"" + url_.master_name + "\"", 0};
            return fail(error);
        }
        server_ = *master;
    } else if (url_.cluster()) {
        std::optional<HostPort> master = ask_cluster(url_, static_cast<uint16_t>(std::max(url_.slot, 0)), timeout_, error);
        if (!master) {
            server_ = HostPort{"the master of slot " + std::to_string(url_.slot), 0};
            return fail(error);
        }
        server_ = *master;
    }
    c = redisConnectWithTimeout(server_.host.c_str(), server_.port, tv);
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
    if (url_.sentinel()) {  // the Sentinels may lag behind a failover: only the master will do
        RedisReply role = command({"ROLE"}, error);
        if (!role_is_master(role.get())) {
            if (!ctx_) c = nullptr;
            ctx_ = nullptr;
            return fail(role ? "not the master yet (a failover is under way)" : error);
        }
    }
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
    return checked(std::move(r));
}

// A server that answers READONLY was the master and is a replica now (a
// failover); in cluster mode, MOVED (the slot is served elsewhere now) and
// CLUSTERDOWN say the same. The connection goes, and the next ensure()
// finds the master.
RedisReply RedisConnection::checked(RedisReply r) {
    if (!r || r->type != REDIS_REPLY_ERROR) return r;
    std::string_view e(r->str, r->len);
    if (e.starts_with("READONLY") ||
        (url_.cluster() && (e.starts_with("MOVED") || e.starts_with("CLUSTERDOWN"))))
        reset();
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
    return checked(RedisReply(static_cast<redisReply *>(raw)));
}

}  // namespace aurora::plugin
