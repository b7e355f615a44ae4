#include "shard_pubsub.h"

#include <hiredis/hiredis.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

namespace aurora::plugin {

namespace {
constexpr auto kPingAfter = std::chrono::milliseconds(1000);
}

struct ShardPubSub::Conn {
    ShardPubSub *owner = nullptr;
    HostPort at;
    redisContext *c = nullptr;
    aurora_io *io = nullptr;
    bool connected = false;              // connect(2) finished
    std::deque<Expect> expect;           // a reply for each command sent, oldest first
    Clock::time_point opened = Clock::now(), last_read = Clock::now();
    Clock::time_point ping_at{};         // the last PING written: unanswered while later than last_read
    bool ping_queued = false;            // ... or queued, not written yet (ping_at is then when it was queued)
    ~Conn() {
        if (c) redisFree(c);
    }
};

ShardPubSub::ShardPubSub(const PluginHandle &plugin, AsyncCluster &cluster, std::chrono::milliseconds timeout,
                         Handlers handlers)
    : plugin_(plugin), cluster_(cluster), timeout_(timeout), h_(std::move(handlers)) {}

ShardPubSub::~ShardPubSub() {
    for (auto &c : conns_)
        if (c->io) plugin_.host->io_stop(c->io);
    if (timer_) plugin_.host->timer_stop(timer_);
}

bool ShardPubSub::start() {
    timer_ = plugin_.host->timer_start(plugin_.self, 100, 100, tick, this);
    return timer_ != nullptr;
}

bool ShardPubSub::subscribed(const std::string &channel) const {
    auto it = channels_.find(channel);
    return it != channels_.end() && it->second.confirmed;
}

void ShardPubSub::subscribe(const std::string &channel) {
    auto [it, fresh] = channels_.try_emplace(channel);
    if (fresh) route_one(it->first, it->second);
}

void ShardPubSub::unsubscribe(const std::string &channel) {
    auto it = channels_.find(channel);
    if (it == channels_.end()) return;
    if (it->second.conn && it->second.conn->c)
        send(*it->second.conn, {"SUNSUBSCRIBE", channel}, Expect{Expect::Kind::Unsubscribe, channel});
    channels_.erase(it);
}

ShardPubSub::Conn &ShardPubSub::conn_for(const HostPort &at) {
    for (auto &c : conns_)
        if (c->at == at && c->c) return *c;
    auto conn = std::make_unique<Conn>();
    conn->owner = this;
    conn->at = at;
    conn->c = redisConnectNonBlock(at.host.c_str(), at.port);
    Conn &c = *conn;
    conns_.push_back(std::move(conn));
    if (!c.c || c.c->err) {
        drop(c, c.c ? c.c->errstr : "out of memory");
        return c;
    }
    c.io = plugin_.host->io_watch(plugin_.self, c.c->fd, AURORA_IO_READ | AURORA_IO_WRITE, on_io, &c);
    if (!c.io) {
        drop(c, "io_watch refused");
        return c;
    }
    const RedisUrl &u = cluster_.url();
    if (!u.password.empty()) send(c, {"AUTH", u.password}, Expect{Expect::Kind::Auth, {}});
    return c;
}

// Appends to the connection's output; it leaves when the socket is writable.
void ShardPubSub::send(Conn &c, const std::vector<std::string_view> &argv, Expect expect) {
    if (!c.c) return;
    std::vector<const char *> ptrs;
    std::vector<size_t> lens;
    for (std::string_view a : argv) {
        ptrs.push_back(a.data());
        lens.push_back(a.size());
    }
    if (redisAppendCommandArgv(c.c, static_cast<int>(argv.size()), ptrs.data(), lens.data()) != REDIS_OK) return;
    c.expect.push_back(std::move(expect));
    if (c.io) plugin_.host->io_set(c.io, AURORA_IO_READ | AURORA_IO_WRITE);
}

// Every channel without a connection goes to the master of its slot.
void ShardPubSub::route() {
    for (auto &[name, ch] : channels_)
        if (!ch.conn) route_one(name, ch);
}

void ShardPubSub::route_one(const std::string &name, Channel &ch) {
    const HostPort *master = cluster_.map().master(key_slot(name));
    if (!master) {
        cluster_.refresh_soon();
        return;
    }
    Conn &c = conn_for(*master);
    if (!c.c) return;  // could not even start connecting: the next tick tries again
    ch.conn = &c;
    ch.gen = ++gens_;
    send(c, {"SSUBSCRIBE", name}, Expect{Expect::Kind::Subscribe, name, ch.gen});
}

void ShardPubSub::on_io(void *p, uint32_t ready) {
    auto *c = static_cast<Conn *>(p);
    ShardPubSub *self = c->owner;
    if (!c->c) return;
    if (ready & AURORA_IO_WRITE) {
        if (!c->connected) {  // connect(2) finished: how?
            int err = 0;
            socklen_t len = sizeof err;
            if (getsockopt(c->c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)
                return self->drop(*c, err ? std::strerror(err) : "connect failed");
            c->connected = true;
            c->last_read = Clock::now();
        }
        int done = 0;
        if (redisBufferWrite(c->c, &done) != REDIS_OK) return self->drop(*c, c->c->errstr);
        if (done) {
            self->plugin_.host->io_set(c->io, AURORA_IO_READ);
            if (c->ping_queued) c->ping_at = Clock::now(), c->ping_queued = false;
        }
    }
    if ((ready & AURORA_IO_READ) && c->c) self->read(*c);
}

void ShardPubSub::read(Conn &c) {
    if (redisBufferRead(c.c) != REDIS_OK) return drop(c, c.c->errstr);
    c.last_read = Clock::now();
    for (;;) {
        void *reply = nullptr;
        if (redisGetReplyFromReader(c.c, &reply) != REDIS_OK) return drop(c, "protocol error");
        if (!reply) return;
        dispatch(c, static_cast<redisReply *>(reply));
        freeReplyObject(reply);
        if (!c.c) return;  // dropped by what it read
    }
}

void ShardPubSub::dispatch(Conn &c, const redisReply *r) {
    std::string_view kind;
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2 && r->element[0]->type == REDIS_REPLY_STRING)
        kind = std::string_view(r->element[0]->str, r->element[0]->len);
    std::string_view channel;
    if (!kind.empty() && r->element[1]->type == REDIS_REPLY_STRING)
        channel = std::string_view(r->element[1]->str, r->element[1]->len);
    if (kind == "smessage" && r->elements == 3 && r->element[2]->type == REDIS_REPLY_STRING) {
        auto it = channels_.find(channel);
        if (it != channels_.end() && it->second.conn == &c && it->second.confirmed && h_.message)
            h_.message(channel, std::string_view(r->element[2]->str, r->element[2]->len));
        return;
    }
    const bool our_unsubscribe = !c.expect.empty() && c.expect.front().kind == Expect::Kind::Unsubscribe &&
                                 c.expect.front().channel == channel;
    if (kind == "sunsubscribe" && !our_unsubscribe) {
        // The server's own: the slot moved away (resharding, failover).
        auto it = channels_.find(std::string(channel));
        if (it != channels_.end() && it->second.conn == &c) {
            bool was = it->second.confirmed;
            it->second = Channel{};
            cluster_.refresh_soon();
            if (was && h_.lost) h_.lost(it->first);
        }
        return;
    }
    // A reply to the oldest command.
    if (c.expect.empty()) return drop(c, "a reply nothing asked for");
    Expect expect = std::move(c.expect.front());
    c.expect.pop_front();
    if (expect.kind != Expect::Kind::Subscribe) {
        if (r->type == REDIS_REPLY_ERROR)
            plugin_.log(AURORA_LOG_ERROR, "redis (shard pub/sub %s:%d): %.*s", c.at.host.c_str(), c.at.port,
                        static_cast<int>(r->len), r->str);
        return;
    }
    if (kind == "ssubscribe" && channel != expect.channel)  // out of step: start this connection over
        return drop(c, "a confirmation for another channel");
    auto it = channels_.find(expect.channel);
    if (it == channels_.end() || it->second.conn != &c || it->second.gen != expect.gen) return;  // an older request's
    if (kind == "ssubscribe") {
        it->second.confirmed = true;
        if (h_.subscribed) h_.subscribed(it->first);
        return;
    }
    // An error (MOVED: the map is behind; CLUSTERDOWN): route it again
    // once the map is asked again.
    if (r->type == REDIS_REPLY_ERROR)
        plugin_.log(AURORA_LOG_WARN, "redis (shard pub/sub %s:%d): SSUBSCRIBE %s: %.*s", c.at.host.c_str(), c.at.port,
                    it->first.c_str(), static_cast<int>(r->len), r->str);
    it->second = Channel{};
    cluster_.refresh_soon();
}

// The connection goes; its channels are routed again at the next tick. The
// Conn itself is freed there too (never inside its own callback).
void ShardPubSub::drop(Conn &c, const char *why) {
    if (c.c && c.connected)
        plugin_.log(AURORA_LOG_WARN, "redis (shard pub/sub %s:%d): connection lost: %s", c.at.host.c_str(), c.at.port,
                    why);
    if (c.io) plugin_.host->io_stop(c.io);
    c.io = nullptr;
    if (c.c) redisFree(c.c);
    c.c = nullptr;
    c.expect.clear();
    for (auto &[name, ch] : channels_) {
        if (ch.conn != &c) continue;
        bool was = ch.confirmed;
        ch = Channel{};
        if (was && h_.lost) h_.lost(name);
    }
    cluster_.refresh_soon();
}

void ShardPubSub::tick(void *p) {
    auto *self = static_cast<ShardPubSub *>(p);
    auto now = Clock::now();
    std::erase_if(self->conns_, [](const std::unique_ptr<Conn> &c) { return !c->c; });
    for (auto &c : self->conns_) {
        // Before a deadline is judged, what the socket allows now is done:
        // the loop may not have run for a while (see ready_now).
        auto catch_up = [&] {
            if (uint32_t ready = ready_now(c->c->fd, AURORA_IO_READ | AURORA_IO_WRITE)) on_io(c.get(), ready);
            now = Clock::now();
            return c->c != nullptr;
        };
        if (!c->connected) {
            if (now - c->opened > self->timeout_ && catch_up() && !c->connected) self->drop(*c, "connect timed out");
            continue;
        }
        auto unanswered = [&] { return c->ping_at > c->last_read && now - c->ping_at > self->timeout_; };
        if (c->ping_at <= c->last_read && now - c->last_read > kPingAfter) {
            self->send(*c, {"PING"}, Expect{Expect::Kind::Ping, {}});
            c->ping_at = now;
            c->ping_queued = true;
        } else if (unanswered() && catch_up() && unanswered()) {
            self->drop(*c, "no answer to PING");
        }
    }
    // A channel on a connection the map no longer names for its slot: move
    // it (no SUNSUBSCRIBE there: the server drops it itself when the slot
    // goes, and its push would be mistaken for the reply).
    for (auto &[name, ch] : self->channels_) {
        if (!ch.conn) continue;
        const HostPort *master = self->cluster_.map().master(key_slot(name));
        if (master && *master != ch.conn->at) {
            bool was = ch.confirmed;
            ch = Channel{};
            if (was && self->h_.lost) self->h_.lost(name);
        }
    }
    std::erase_if(self->conns_, [](const std::unique_ptr<Conn> &c) { return !c->c; });
    self->route();
}

}  // namespace aurora::plugin
