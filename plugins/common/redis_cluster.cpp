#include "redis_cluster.h"

namespace aurora::plugin {

RedisCluster::RedisCluster(std::vector<HostPort> seeds, std::string password, std::chrono::milliseconds timeout)
    : seeds_(std::move(seeds)), password_(std::move(password)), timeout_(timeout) {}

RedisConnection &RedisCluster::node(const HostPort &at) {
    std::unique_ptr<RedisConnection> &c = nodes_[{at.host, at.port}];
    if (!c) {
        RedisUrl url;
        url.host = at.host;
        url.port = at.port;
        url.password = password_;  // a cluster has database 0 only
        c = std::make_unique<RedisConnection>(url, timeout_);
    }
    return *c;
}

bool RedisCluster::refresh(std::string &error) {
    ++refreshes_;
    std::vector<HostPort> ask = map_.masters();  // those it knows first, then the seeds
    ask.insert(ask.end(), seeds_.begin(), seeds_.end());
    error = "no cluster node to ask";
    for (const HostPort &at : ask) {
        RedisConnection &c = node(at);
        if (!c.ensure(error)) continue;
        RedisReply r = c.command({"CLUSTER", "SLOTS"}, error);
        if (!r) continue;
        if (r->type == REDIS_REPLY_ERROR) {
            error = at.host + ":" + std::to_string(at.port) + ": " + std::string(r->str, r->len);
            continue;
        }
        if (map_.load(r.get(), error, at)) {
            stale_ = false;
            return true;
        }
    }
    return false;
}

RedisConnection *RedisCluster::connection(uint16_t slot, std::string &error) { return route(slot, true, error); }

// `may_refresh` is false after a redirection within one command: the slot
// the MOVED corrected is used as it is, not replaced by a node's view that
// may lag behind the move (the whole map is asked for at the next command).
RedisConnection *RedisCluster::route(uint16_t slot, bool may_refresh, std::string &error) {
    if ((map_.empty() || (stale_ && may_refresh)) && !refresh(error) && map_.empty()) return nullptr;
    const HostPort *at = map_.master(slot);
    if (!at) {
        error = "no master serves slot " + std::to_string(slot);
        stale_ = true;
        return nullptr;
    }
    RedisConnection &c = node(*at);
    if (!c.ensure(error)) {
        stale_ = true;  // failed over, perhaps: ask again next time
        return nullptr;
    }
    return &c;
}

bool RedisCluster::redirected(const redisReply *r, const HostPort &from) {
    if (!r || r->type != REDIS_REPLY_ERROR) return false;
    std::optional<Redirect> to = parse_redirect(std::string_view(r->str, r->len), from);
    if (!to) return false;
    ++redirects_;
    if (to->kind == Redirect::Kind::Moved) {
        map_.moved(to->slot, to->to);
        stale_ = true;  // one slot moved: others probably did too
    }
    return true;
}

RedisReply RedisCluster::command(uint16_t slot, const std::vector<std::string> &argv, std::string &error) {
    std::optional<HostPort> asking;  // an ASK's target, for the next hop only
    RedisReply last;
    for (int hop = 0; hop <= kMaxRedirects; ++hop) {
        RedisConnection *c = nullptr;
        if (asking) {
            c = &node(*asking);
            if (!c->ensure(error)) return nullptr;
        } else if (!(c = route(slot, hop == 0, error))) {
            return nullptr;
        }
        HostPort from = c->server();
        if (asking) {
            c->append({"ASKING"});
            c->append(argv);
            RedisReply ok = c->read(error);
            last = ok ? c->read(error) : nullptr;
        } else {
            last = c->command(argv, error);
        }
        if (!last) {
            stale_ = true;
            return nullptr;
        }
        asking.reset();
        if (last->type != REDIS_REPLY_ERROR) return last;
        std::optional<Redirect> to = parse_redirect(std::string_view(last->str, last->len), from);
        if (!to) return last;  // an error of the command's own
        redirected(last.get(), from);
        if (to->kind == Redirect::Kind::Ask) asking = to->to;
    }
    return last;  // still redirected after kMaxRedirects hops
}

}  // namespace aurora::plugin
