// RedisConnection against a real redis-server: URL parsing, pipelining,
// and what happens when the server goes away.
#include <gtest/gtest.h>

#include "real_servers.h"
#include "redis_connection.h"

namespace aurora::plugin {
namespace {

using aurora::testing::RealServers;
using aurora::testing::RedisServer;

TEST(RedisUrl, Parses) {
    std::string err;
    auto u = parse_redis_url("redis://:pw@10.1.2.3:6390/4", err);
    ASSERT_TRUE(u) << err;
    EXPECT_EQ(u->host, "10.1.2.3");
    EXPECT_EQ(u->port, 6390);
    EXPECT_EQ(u->db, 4);
    EXPECT_EQ(u->password, "pw");
    u = parse_redis_url("redis://localhost", err);
    ASSERT_TRUE(u) << err;
    EXPECT_EQ(u->port, 6379);
    EXPECT_FALSE(parse_redis_url("http://x", err));
    EXPECT_FALSE(parse_redis_url("redis://h:99999/0", err));
    EXPECT_FALSE(parse_redis_url("redis://h:1/x", err));
}

TEST(HostPort, Parses) {
    EXPECT_EQ(parse_host_port("10.0.0.1:26379"), (HostPort{"10.0.0.1", 26379}));
    EXPECT_EQ(parse_host_port("sentinel-1:5"), (HostPort{"sentinel-1", 5}));
    EXPECT_EQ(parse_host_port("[::1]:26380"), (HostPort{"::1", 26380}));
    for (const char *bad : {"", "h", ":1", "h:", "h:0", "h:65536", "h:1x", "::1:5", "[::1:5", "[]:5", "h:-1"})
        EXPECT_FALSE(parse_host_port(bad)) << bad;
}

TEST(RedisConnection, PipelinesInOneRoundTrip) {
    auto &srv = RealServers::redis();
    std::string err;
    RedisConnection r(*parse_redis_url(srv.url(), err), std::chrono::milliseconds(500));
    ASSERT_TRUE(r.ensure(err)) << err;
    for (int i = 0; i < 100; ++i) r.append({"RPUSH", "pipe", std::to_string(i)});
    EXPECT_EQ(r.pending(), 100u);
    for (int i = 0; i < 100; ++i) {
        RedisReply rep = r.read(err);
        ASSERT_TRUE(rep) << err;
        EXPECT_EQ(rep->integer, i + 1);
    }
    RedisReply err_reply = r.command({"INCR", "pipe"}, err);  // wrong type: an error reply, not a failure
    ASSERT_TRUE(err_reply);
    EXPECT_EQ(err_reply->type, REDIS_REPLY_ERROR);
    EXPECT_TRUE(r.connected());
}

TEST(RedisConnection, DropsTheConnectionAndBacksOffWhenTheServerGoes) {
    auto own = RedisServer::start();  // a private server this test may stop
    std::string err;
    auto url = *parse_redis_url(own->url(), err);
    RedisConnection r(url, std::chrono::milliseconds(300));
    ASSERT_TRUE(r.ensure(err)) << err;
    ASSERT_TRUE(r.command({"SET", "k", "v"}, err));
    own->stop();
    EXPECT_FALSE(r.command({"GET", "k"}, err));  // I/O error: the connection is dropped
    EXPECT_FALSE(r.connected());
    EXPECT_FALSE(r.ensure(err));
    EXPECT_NE(err.find("redis"), std::string::npos) << err;
}

}  // namespace
}  // namespace aurora::plugin
