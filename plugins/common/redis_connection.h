// One synchronous hiredis connection, owned by one thread (DESIGN §3: one
// connection per thread, pipelined). Parses redis://[:password@]host:port/db,
// connects with a timeout, AUTHs and SELECTs, and reconnects on demand with
// capped exponential backoff so a thread can simply ask ensure() before
// each batch.
//
// Sentinel mode (redis.mode "sentinel", docs/scaling.md): every (re)connect
// asks the Sentinels where the master is, and checks with ROLE that the
// server it reached is that master; a READONLY reply (the server was
// demoted) drops the connection, so the next ensure() asks again.
//
//     RedisConnection redis(url, std::chrono::milliseconds(500));
//     if (!redis.ensure(err)) { ...answer "unavailable"...; }
//     redis.append({"XADD", "chat:messages", "*", "roomId", room});  // pipelined
//     redis.append({"PUBLISH", channel, payload});
//     RedisReply a = redis.read(err), b = redis.read(err);            // one round trip
#pragma once

#include <aurora/host_api.h>
#include <hiredis/hiredis.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aurora::plugin {

struct HostPort {
    std::string host;
    int port = 0;
    bool operator==(const HostPort &) const = default;
};
// nullopt for anything but host:port or [v6]:port.
std::optional<HostPort> parse_host_port(std::string_view text);

// Where a plugin's Redis is: one server (host, port), or the master that
// Sentinels name (sentinel mode: host and port are unused). The password
// and database apply to the server either way.
struct RedisUrl {
    std::string host = "127.0.0.1";
    int port = 6379;
    int db = 0;
    std::string password;
    std::vector<HostPort> sentinels;  // non-empty: sentinel mode
    std::string master_name;
    std::vector<HostPort> nodes;  // non-empty: cluster mode (the seed nodes; host and port unused)
    int stream_shards = 0;        // cluster mode: chat:messages:{0..N-1}
    int slot = -1;                // cluster mode, RedisConnection: connect to the master of this slot

    bool sentinel() const { return !sentinels.empty(); }
    bool cluster() const { return !nodes.empty(); }
};
// nullopt (with `error`) for anything but redis://[[user]:password@]host[:port][/db].
std::optional<RedisUrl> parse_redis_url(std::string_view url, std::string &error);

// The Redis of a plugin, from the host's shared settings: redis.url,
// redis.mode, redis.sentinels, redis.master_name, redis.nodes,
// redis.stream_shards; or, when `url` is not empty (a plugin's own Redis),
// that one server. nullopt with `error` naming the setting; cluster mode
// is refused unless the plugin says it runs there (`cluster_ok`).
std::optional<RedisUrl> redis_target(const aurora_host_api *host, aurora_plugin_ctx *self, std::string_view url,
                                     std::string &error, bool cluster_ok = false);

// Sentinel mode: asks the Sentinels in turn (each within `timeout`) where
// the master is. Blocking: worker threads only.
std::optional<HostPort> ask_sentinels(const RedisUrl &url, std::chrono::milliseconds timeout, std::string &error);

// Cluster mode: asks the seed nodes in turn (CLUSTER SLOTS, each within
// `timeout`) which master serves `slot`. Blocking: worker threads only.
std::optional<HostPort> ask_cluster(const RedisUrl &url, uint16_t slot, std::chrono::milliseconds timeout,
                                    std::string &error);

// A ROLE reply of a master.
bool role_is_master(const redisReply *r);
// A SENTINEL get-master-addr-by-name reply ([host, port]); nullopt for
// anything else (nil: the Sentinel does not know the name).
std::optional<HostPort> master_address(const redisReply *r);

struct ReplyFree {
    void operator()(redisReply *r) const { freeReplyObject(r); }
};
using RedisReply = std::unique_ptr<redisReply, ReplyFree>;

class RedisConnection {
public:
    RedisConnection(RedisUrl url, std::chrono::milliseconds timeout);
    ~RedisConnection();
    RedisConnection(const RedisConnection &) = delete;
    RedisConnection &operator=(const RedisConnection &) = delete;

    // Connected, or (re)connects now unless the backoff says wait. False
    // with `error` while Redis is unreachable.
    bool ensure(std::string &error);
    bool connected() const { return ctx_ != nullptr; }
    // Drops the connection (after an I/O error); the next ensure() reconnects.
    void reset();

    // One command, one round trip. nullptr (and reset()) on I/O error; a
    // Redis error reply is returned as a reply of type REDIS_REPLY_ERROR.
    RedisReply command(const std::vector<std::string> &argv, std::string &error);
    // Pipelining: append any number of commands, then read() as many replies.
    void append(const std::vector<std::string> &argv);
    RedisReply read(std::string &error);
    size_t pending() const { return pending_; }
    // The server connected to (in sentinel mode, the master found).
    const HostPort &server() const { return server_; }

    redisContext *raw() { return ctx_; }

private:
    RedisReply checked(RedisReply r);  // drops the connection on READONLY

    RedisUrl url_;
    std::chrono::milliseconds timeout_;
    HostPort server_;
    redisContext *ctx_ = nullptr;
    size_t pending_ = 0;
    std::chrono::steady_clock::time_point next_attempt_{};
    std::chrono::milliseconds backoff_{0};
};

}  // namespace aurora::plugin
