// RedisCluster against a real Redis Cluster (3 masters, 3 replicas) that
// test_redis_cluster.py starts and names in AURORA_TEST_CLUSTER_NODES:
// routing agrees with the servers' CLUSTER KEYSLOT, ASK and MOVED during a
// slot migration done here by hand, and a master that dies is replaced.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "redis_cluster.h"

namespace aurora::plugin {
namespace {

using namespace std::chrono_literals;

std::vector<HostPort> nodes() {
    std::vector<HostPort> out;
    const char *env = std::getenv("AURORA_TEST_CLUSTER_NODES");
    std::string list = env ? env : "";
    for (size_t start = 0; start < list.size();) {
        size_t comma = std::min(list.find(',', start), list.size());
        if (auto hp = parse_host_port(std::string_view(list).substr(start, comma - start))) out.push_back(*hp);
        start = comma + 1;
    }
    return out;
}

class RedisClusterTest : public ::testing::Test {
protected:
    void SetUp() override {
        all = nodes();
        if (all.size() < 6) GTEST_FAIL() << "AURORA_TEST_CLUSTER_NODES is unset: run tests/plugins/common/test_redis_cluster.py";
    }
    // A connection to one node, outside the client under test.
    RedisReply on(const HostPort &at, const std::vector<std::string> &argv) {
        RedisUrl u;
        u.host = at.host;
        u.port = at.port;
        RedisConnection c(u, 2000ms);
        std::string err;
        EXPECT_TRUE(c.ensure(err)) << err;
        RedisReply r = c.command(argv, err);
        EXPECT_TRUE(r) << err;
        return r;
    }
    std::string text(const RedisReply &r) { return r ? std::string(r->str, r->len) : std::string(); }

    std::vector<HostPort> all;
};

// The keys chat uses in cluster mode, and hostile ones.
std::vector<std::string> sample_keys() {
    std::vector<std::string> keys = {"chat:messages:{0}", "chat:messages:{15}", "chat.{3}.general", "{}", "{", "}{",
                                     "a{b}c{d}", "{{x}}", std::string("nul\0key", 7), "ünïcødé", ""};
    for (int i = 0; i < 300; ++i) keys.push_back("key:" + std::to_string(i) + (i % 3 ? "{t" + std::to_string(i % 7) + "}" : ""));
    return keys;
}

TEST_F(RedisClusterTest, RoutesEveryKeyToItsSlotAsTheServersSay) {
    RedisCluster cluster({all.front()}, "", 1000ms);  // one seed is enough
    std::string err;
    for (const std::string &k : sample_keys()) {
        RedisReply slot = on(all.front(), {"CLUSTER", "KEYSLOT", k});
        ASSERT_TRUE(slot && slot->type == REDIS_REPLY_INTEGER) << k;
        EXPECT_EQ(key_slot(k), slot->integer) << k;
        RedisReply set = cluster.command(key_slot(k), {"SET", k, "v:" + k}, err);
        ASSERT_TRUE(set) << err;
        EXPECT_EQ(text(set), "OK") << k;
        RedisReply get = cluster.command(key_slot(k), {"GET", k}, err);
        ASSERT_TRUE(get) << err;
        EXPECT_EQ(text(get), "v:" + k);
    }
    EXPECT_EQ(cluster.redirects(), 0u) << "a fresh map needs no redirection";
    EXPECT_EQ(cluster.map().masters().size(), 3u);
}

TEST_F(RedisClusterTest, FollowsAskDuringAMigrationAndMovedAfterIt) {
    RedisCluster cluster(all, "", 1000ms);
    std::string err;
    const std::string key = "migrating{m}", fresh = "fresh{m}";
    const uint16_t slot = key_slot(key);
    ASSERT_TRUE(cluster.command(slot, {"SET", key, "before"}, err)) << err;
    const HostPort source = *cluster.map().master(slot);
    HostPort target;
    for (const HostPort &m : cluster.map().masters())
        if (!(m == source)) target = m;
    const std::string source_id = text(on(source, {"CLUSTER", "MYID"})), target_id = text(on(target, {"CLUSTER", "MYID"}));
    const std::string s = std::to_string(slot);

    EXPECT_EQ(text(on(target, {"CLUSTER", "SETSLOT", s, "IMPORTING", source_id})), "OK");
    EXPECT_EQ(text(on(source, {"CLUSTER", "SETSLOT", s, "MIGRATING", target_id})), "OK");
    // A key the source does not hold: ASK, answered by the target.
    RedisReply set = cluster.command(slot, {"SET", fresh, "asked"}, err);
    ASSERT_TRUE(set) << err;
    EXPECT_EQ(text(set), "OK");
    EXPECT_EQ(cluster.redirects(), 1u);
    EXPECT_EQ(*cluster.map().master(slot), source) << "ASK moves one command, not the slot";
    // A key it still holds: answered by the source, no redirection.
    EXPECT_EQ(text(cluster.command(slot, {"GET", key}, err)), "before");
    EXPECT_EQ(cluster.redirects(), 1u);

    RedisReply moved = on(source, {"MIGRATE", target.host, std::to_string(target.port), "", "0", "5000", "KEYS", key});
    ASSERT_EQ(text(moved), "OK");
    for (const HostPort &n : all) on(n, {"CLUSTER", "SETSLOT", s, "NODE", target_id});
    // The map still names the source: MOVED, followed, and the slot corrected.
    RedisReply get = cluster.command(slot, {"GET", key}, err);
    ASSERT_TRUE(get) << err;
    EXPECT_EQ(text(get), "before");
    EXPECT_EQ(text(cluster.command(slot, {"GET", fresh}, err)), "asked");
    EXPECT_EQ(cluster.redirects(), 2u);
    EXPECT_EQ(*cluster.map().master(slot), target);
}

TEST_F(RedisClusterTest, ADeadMasterIsReplacedByItsReplica) {
    RedisCluster cluster(all, "", 3000ms);
    std::string err;
    const std::string key = "survivor{d}";
    const uint16_t slot = key_slot(key);
    ASSERT_TRUE(cluster.command(slot, {"SET", key, "kept"}, err)) << err;
    const HostPort dead = *cluster.map().master(slot);
    // WAIT: the replica has it before the master goes.
    RedisReply waited = cluster.command(slot, {"WAIT", "1", "2000"}, err);
    ASSERT_TRUE(waited && waited->type == REDIS_REPLY_INTEGER && waited->integer == 1)
        << err << (waited ? " reply type " + std::to_string(waited->type) + " " + std::to_string(waited->integer) + " " + text(waited) : "");
    {
        RedisUrl u;
        u.host = dead.host;
        u.port = dead.port;
        RedisConnection c(u, 1000ms);
        ASSERT_TRUE(c.ensure(err)) << err;
        // NOW: without waiting for replicas to catch up (Redis 7 waits up to
        // shutdown-timeout otherwise). No reply: the connection drops with it.
        RedisReply r = c.command({"SHUTDOWN", "NOSAVE", "NOW", "FORCE"}, err);
        ASSERT_FALSE(r) << text(r);
    }
    const uint64_t refreshes = cluster.refreshes();
    auto deadline = std::chrono::steady_clock::now() + 20s;
    RedisReply got;
    while (std::chrono::steady_clock::now() < deadline) {
        got = cluster.command(slot, {"GET", key}, err);
        if (got && got->type == REDIS_REPLY_STRING) break;
        std::this_thread::sleep_for(50ms);  // polls the failover, bounded by the deadline
    }
    ASSERT_TRUE(got && got->type == REDIS_REPLY_STRING) << "no answer 20 s after the master died: " << err;
    EXPECT_EQ(text(got), "kept");
    EXPECT_FALSE(*cluster.map().master(slot) == dead);
    EXPECT_GT(cluster.refreshes(), refreshes);
}

}  // namespace
}  // namespace aurora::plugin
