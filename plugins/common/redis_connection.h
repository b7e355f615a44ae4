// One synchronous hiredis connection, owned by one thread (DESIGN §3: one
// connection per thread, pipelined). Parses redis://[:password@]host:port/db,
// connects with a timeout, AUTHs and SELECTs, and reconnects on demand with
// capped exponential backoff so a thread can simply ask ensure() before
// each batch.
//
//     RedisConnection redis(url, std::chrono::milliseconds(500));
//     if (!redis.ensure(err)) { ...answer "unavailable"...; }
//     redis.append({"XADD", "chat:messages", "*", "roomId", room});  // pipelined
//     redis.append({"PUBLISH", channel, payload});
//     RedisReply a = redis.read(err), b = redis.read(err);            // one round trip
#pragma once

#include <hiredis/hiredis.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aurora::plugin {

struct RedisUrl {
    std::string host = "127.0.0.1";
    int port = 6379;
    int db = 0;
    std::string password;
};
// nullopt (with `error`) for anything but redis://[[user]:password@]host[:port][/db].
std::optional<RedisUrl> parse_redis_url(std::string_view url, std::string &error);

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

    redisContext *raw() { return ctx_; }

private:
    RedisUrl url_;
    std::chrono::milliseconds timeout_;
    redisContext *ctx_ = nullptr;
    size_t pending_ = 0;
    std::chrono::steady_clock::time_point next_attempt_{};
    std::chrono::milliseconds backoff_{0};
};

}  // namespace aurora::plugin
