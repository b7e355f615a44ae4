// Redis 7 sharded Pub/Sub on the host's service loop: each channel is
// SSUBSCRIBEd on the master that serves its slot (a channel hashes like a
// key, hash tags included), one connection per master, and the channels of
// a master that fails, or of a slot that moves, are subscribed again on the
// master the slot map names next.
//
//     ShardPubSub pubsub(plugin, cluster, 1000ms, {on_message, on_subscribed, on_lost});
//     pubsub.start();
//     pubsub.subscribe("chat.{3}.general");   // on_subscribed("chat.{3}.general") once confirmed
//
// WHY ITS OWN READER: hiredis 0.14's asynchronous API knows the replies of
// SUBSCRIBE and PSUBSCRIBE only; an `smessage` push with no callback waiting
// trips its assert. This reads the connection with hiredis's reply parser
// (redisContext in non-blocking mode, redisBufferRead) and tells replies from
// pushes itself: every command it sends (AUTH, SSUBSCRIBE, SUNSUBSCRIBE,
// PING; one channel per command) expects one reply, in order; `smessage`,
// and an `sunsubscribe` nothing asked for (the server's, when a slot moves
// away), are pushes.
//
// Liveness: a connection that read nothing for a second sends PING; one
// that read nothing for `timeout` after that (a paused or unreachable
// master) is dropped, and its channels are subscribed again once the map
// names a master that answers. Messages published while a channel was not
// subscribed are not delivered: on_lost says so, and the caller covers the
// gap from the stream (chat's resume).
//
// THREADS: [service], or [main] in the plugin's init and shutdown.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "async_cluster.h"

namespace aurora::plugin {

class ShardPubSub {
public:
    struct Handlers {
        std::function<void(std::string_view channel, std::string_view payload)> message;
        std::function<void(const std::string &channel)> subscribed;  // confirmed (again, after a loss)
        std::function<void(const std::string &channel)> lost;        // not subscribed now; again when it can be
    };

    ShardPubSub(const PluginHandle &plugin, AsyncCluster &cluster, std::chrono::milliseconds timeout,
                Handlers handlers);
    ~ShardPubSub();
    ShardPubSub(const ShardPubSub &) = delete;
    ShardPubSub &operator=(const ShardPubSub &) = delete;

    bool start();
    void subscribe(const std::string &channel);
    void unsubscribe(const std::string &channel);
    bool subscribed(const std::string &channel) const;
    size_t channels() const { return channels_.size(); }

private:
    using Clock = std::chrono::steady_clock;
    struct Conn;
    struct Channel {
        Conn *conn = nullptr;  // where it is subscribed or asked; nullptr: to route
        bool confirmed = false;
        uint64_t gen = 0;      // which SSUBSCRIBE confirms it (an older one's reply does not)
    };
    struct Expect {  // the reply one command sent waits for
        enum class Kind { Auth, Ping, Subscribe, Unsubscribe } kind;
        std::string channel;
        uint64_t gen = 0;
    };
    static void tick(void *p);
    static void on_io(void *p, uint32_t ready);
    Conn &conn_for(const HostPort &at);
    void send(Conn &c, const std::vector<std::string_view> &argv, Expect expect);
    void route_one(const std::string &name, Channel &ch);
    void read(Conn &c);
    void dispatch(Conn &c, const redisReply *r);
    void drop(Conn &c, const char *why);
    void route();

    PluginHandle plugin_;
    AsyncCluster &cluster_;
    std::chrono::milliseconds timeout_;
    Handlers h_;
    std::map<std::string, Channel, std::less<>> channels_;  // found by string_view: no copy per message
    std::vector<std::unique_ptr<Conn>> conns_;
    uint64_t gens_ = 0;
    aurora_timer *timer_ = nullptr;
};

}  // namespace aurora::plugin
