// ratelimit_bench: checks per second through the ratelimit plugin's
// sliding-window script, pipelined the way its limiter thread does it
// (append one EVALSHA per waiting check, then read every reply). Not a test:
// it prints numbers.
//
//   build/tests/bench/ratelimit_bench [--redis redis://127.0.0.1:6379/0]
//       [--checks 200000] [--users 1000] [--limits 2]
//
// Without --redis it starts a private redis-server on a free port (the test
// fixture). Each check is one script call over `--limits` keys (2 = the
// per-room and the per-user limit of one chat message), spread over
// `--users` users; the budget is large so every check is allowed and
// recorded (the most expensive path: LPUSH, LTRIM, PEXPIRE per key).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "real_servers.h"
#include "redis_connection.h"
#include "sliding_window_script.h"

using namespace aurora;

namespace {

struct Options {
    std::string redis;
    long checks = 200000;
    long users = 1000;
    int limits = 2;
};

bool parse(int argc, char **argv, Options &o) {
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (i + 1 >= argc) return false;
        if (a == "--redis") o.redis = argv[++i];
        else if (a == "--checks") o.checks = std::atol(argv[++i]);
        else if (a == "--users") o.users = std::atol(argv[++i]);
        else if (a == "--limits") o.limits = std::atoi(argv[++i]);
        else return false;
    }
    return o.checks > 0 && o.users > 0 && o.limits >= 1 && o.limits <= 4;
}

// One run: `checks` script calls in batches of `batch`. Returns checks/s.
double run(plugin::RedisConnection &redis, const std::string &sha, const Options &o, long batch,
           const std::string &tag) {
    const ratelimit::Limit big{1000000, 1000};
    std::vector<std::vector<ratelimit::KeyedLimit>> calls(static_cast<size_t>(o.users));
    for (long u = 0; u < o.users; ++u) {
        for (int l = 0; l < o.limits; ++l)
            calls[static_cast<size_t>(u)].push_back(
                {"bench" + tag + ":" + std::to_string(l) + ":user" + std::to_string(u) + ":general", big});
    }
    std::string err;
    auto t0 = std::chrono::steady_clock::now();
    long done = 0, allowed = 0;
    while (done < o.checks) {
        long n = std::min(batch, o.checks - done);
        for (long i = 0; i < n; ++i) redis.append(ratelimit::evalsha_argv(sha, calls[static_cast<size_t>((done + i) % o.users)]));
        for (long i = 0; i < n; ++i) {
            plugin::RedisReply r = redis.read(err);
            ratelimit::Verdict v;
            if (!r || ratelimit::decode(r.get(), v, err) != ratelimit::ReplyKind::Ok) {
                std::fprintf(stderr, "check failed: %s\n", err.c_str());
                std::exit(1);
            }
            allowed += v.allowed;
        }
        done += n;
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (allowed != o.checks) std::fprintf(stderr, "warning: %ld of %ld allowed\n", allowed, o.checks);
    return static_cast<double>(done) / s;
}

}  // namespace

int main(int argc, char **argv) {
    Options o;
    if (!parse(argc, argv, o)) {
        std::fprintf(stderr, "usage: %s [--redis URL] [--checks N] [--users N] [--limits 1..4]\n", argv[0]);
        return 2;
    }
    std::unique_ptr<testing::RedisServer> own;
    if (o.redis.empty()) {
        own = testing::RedisServer::start();
        o.redis = own->url();
    }
    std::string err;
    auto url = plugin::parse_redis_url(o.redis, err);
    if (!url) {
        std::fprintf(stderr, "%s\n", err.c_str());
        return 2;
    }
    plugin::RedisConnection redis(*url, std::chrono::milliseconds(5000));
    plugin::RedisReply loaded =
        redis.ensure(err) ? redis.command({"SCRIPT", "LOAD", std::string(ratelimit::sliding_window_lua())}, err) : nullptr;
    if (!loaded || loaded->type != REDIS_REPLY_STRING) {
        std::fprintf(stderr, "redis: %s\n", loaded ? "SCRIPT LOAD refused" : err.c_str());
        return 1;
    }
    const std::string sha(loaded->str, loaded->len);
    std::printf("command: ");
    for (int i = 0; i < argc; ++i) std::printf("%s%s", i ? " " : "", argv[i]);
    std::printf("\nredis %s%s; %ld checks, %d key(s) per check, %ld users\n", o.redis.c_str(),
                own ? " (private server)" : "", o.checks, o.limits, o.users);
    std::printf("%10s %14s\n", "batch", "checks/s");
    for (long batch : {1L, 16L, 128L, 1024L}) {
        double rate = run(redis, sha, o, batch, std::to_string(batch));
        std::printf("%10ld %14.0f\n", batch, rate);
    }
    return 0;
}
