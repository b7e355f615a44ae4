// The ratelimit plugin's pure parts: the sliding window's rule (the same
// rule as the Lua script, checked exhaustively here where time can be
// chosen) and the settings' validation.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "local_window.h"
#include "ratelimit_settings.h"

namespace aurora::ratelimit {
namespace {

aurora_str text(const char *s) { return aurora_str{s, std::strlen(s)}; }

TEST(LocalWindow, BurstThenRetryAfter) {
    LocalWindow w;
    Limit l{3, 1000};
    EXPECT_EQ(w.hit(l, 0), 0);
    EXPECT_EQ(w.hit(l, 0), 0);
    EXPECT_EQ(w.hit(l, 1), 0);
    EXPECT_EQ(w.hit(l, 2), 998);     // until the first leaves the window
    EXPECT_EQ(w.hit(l, 999), 1);     // refusals record nothing
    EXPECT_EQ(w.hit(l, 1000), 0);    // honouring the wait succeeds
    EXPECT_EQ(w.hit(l, 1000), 0);    // both events at 0 left the window (0, 1000]
    EXPECT_EQ(w.hit(l, 1000), 1);    // the one at 1 has not
    EXPECT_EQ(w.hit(Limit{0, 1000}, 1000), 0);  // off
}

TEST(LocalWindow, SeedBoundaryBurstIsRefused) {
    // 3 at the end of one second, 3 at the start of the next: 6 in 2 ms
    // under the seed's fixed window; here the last 3 wait.
    LocalWindow w;
    Limit l{3, 1000};
    for (int i = 0; i < 3; ++i) EXPECT_EQ(w.hit(l, 999), 0);
    for (int i = 0; i < 3; ++i) EXPECT_GT(w.hit(l, 1001), 0);
}

// Property: for random schedules, (1) no window of window_ms holds more
// than max allowed events, and (2) every refused event had max allowed
// events in the window ending at it (the limiter never refuses needlessly).
TEST(LocalWindow, ExactOnRandomSchedules) {
    std::mt19937 rng(42);
    for (int round = 0; round < 200; ++round) {
        Limit l{1 + static_cast<int64_t>(rng() % 5), 50 + static_cast<int64_t>(rng() % 500)};
        LocalWindow w;
        std::vector<int64_t> allowed;
        int64_t t = 0;
        for (int i = 0; i < 300; ++i) {
            t += rng() % 3 == 0 ? 0 : static_cast<int64_t>(rng() % (2 * l.window_ms / l.max + 1));
            int64_t in_window = 0;
            for (int64_t a : allowed) in_window += a > t - l.window_ms;
            int64_t wait = w.hit(l, t);
            if (wait == 0) {
                ASSERT_LT(in_window, l.max) << "allowed over the limit at t=" << t;
                allowed.push_back(t);
            } else {
                ASSERT_EQ(in_window, l.max) << "refused needlessly at t=" << t;
                // After `wait` a slot is free, and not one millisecond sooner.
                int64_t at_wait = 0, just_before = 0;
                for (int64_t a : allowed) {
                    at_wait += a > t + wait - l.window_ms;
                    just_before += a > t + wait - 1 - l.window_ms;
                }
                ASSERT_LT(at_wait, l.max);
                ASSERT_EQ(just_before, l.max);
            }
        }
    }
}

TEST(Settings, DefaultsAreTheSeedsLimit) {
    std::string err;
    auto c = parse_config(text("{}"), "redis://h:1/0", err);
    ASSERT_TRUE(c) << err;
    EXPECT_EQ(c->room.max, 3);
    EXPECT_EQ(c->room.window_ms, 1000);
    EXPECT_EQ(c->user.max, 10);
    EXPECT_EQ(c->key_prefix, "rate");
    EXPECT_EQ(c->default_room, "general");
    EXPECT_EQ(c->redis_url, "redis://h:1/0");
    EXPECT_EQ(c->on_redis_error, OnRedisError::Deny);
    EXPECT_EQ(c->on_redis_error_connect, OnRedisError::Allow);
}

TEST(Settings, MistakesAreErrors) {
    std::string err;
    EXPECT_FALSE(parse_config(text(R"({"room_maxx":3})"), "", err));
    EXPECT_NE(err.find("room_maxx"), std::string::npos) << err;
    EXPECT_FALSE(parse_config(text(R"({"room_max":-1})"), "", err));
    EXPECT_FALSE(parse_config(text(R"({"room_window_ms":0})"), "", err));
    EXPECT_FALSE(parse_config(text(R"({"on_redis_error":"maybe"})"), "", err));
    EXPECT_NE(err.find("on_redis_error"), std::string::npos) << err;
    EXPECT_FALSE(parse_config(text(R"({"anonymous_key":"ip"})"), "", err));
    EXPECT_FALSE(parse_config(text(R"({"key_prefix":""})"), "", err));
    EXPECT_FALSE(parse_config(text(R"({"message_types":["typing"]})"), "", err));  // also a control type
    EXPECT_NE(err.find("typing"), std::string::npos) << err;
}

}  // namespace
}  // namespace aurora::ratelimit
