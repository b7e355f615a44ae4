// Key slots, hash tags, redirections and the slot map, against the Redis
// Cluster specification's own examples (no server; the real cluster checks
// the same functions against CLUSTER KEYSLOT: test_redis_cluster.py).
#include <gtest/gtest.h>

#include <hiredis/read.h>

#include "cluster_slots.h"

namespace aurora::plugin {
namespace {

TEST(ClusterSlots, Crc16IsXmodem) {
    EXPECT_EQ(crc16("123456789"), 0x31C3);  // the specification's check value
    EXPECT_EQ(crc16(""), 0);
}

TEST(ClusterSlots, KeySlot) {
    EXPECT_EQ(key_slot("123456789"), 0x31C3);
    EXPECT_EQ(key_slot("foo"), 12182);  // redis-cli CLUSTER KEYSLOT foo
    EXPECT_EQ(key_slot("bar"), 5061);
    for (size_t i = 0; i < 1000; ++i) EXPECT_LT(key_slot(std::string(i, 'x')), kClusterSlots);
}

TEST(ClusterSlots, HashTags) {
    // The specification's examples.
    EXPECT_EQ(key_slot("{user1000}.following"), key_slot("user1000"));
    EXPECT_EQ(key_slot("{user1000}.followers"), key_slot("user1000"));
    EXPECT_EQ(key_slot("foo{}{bar}"), key_slot("foo{}{bar}"));  // empty first tag: the whole key
    EXPECT_NE(key_slot("foo{}{bar}"), key_slot("bar"));
    EXPECT_EQ(key_slot("foo{{bar}}zap"), key_slot("{bar"));
    EXPECT_EQ(key_slot("foo{bar}{zap}"), key_slot("bar"));
    EXPECT_EQ(key_slot("{}"), crc16("{}") & (kClusterSlots - 1));
    EXPECT_EQ(key_slot("only{open"), crc16("only{open") & (kClusterSlots - 1));
    EXPECT_EQ(key_slot("chat:messages:{3}"), key_slot("chat.{3}.general"));
}

TEST(ClusterSlots, Redirects) {
    auto m = parse_redirect("MOVED 3999 127.0.0.1:6381");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->kind, Redirect::Kind::Moved);
    EXPECT_EQ(m->slot, 3999);
    EXPECT_EQ(m->to, (HostPort{"127.0.0.1", 6381}));
    auto a = parse_redirect("ASK 0 [::1]:7000");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->kind, Redirect::Kind::Ask);
    EXPECT_EQ(a->to, (HostPort{"::1", 7000}));
    auto own = parse_redirect("MOVED 16383 :6380", HostPort{"10.0.0.9", 7000});
    ASSERT_TRUE(own);
    EXPECT_EQ(own->to, (HostPort{"10.0.0.9", 6380}));
    for (const char *bad : {"MOVED", "MOVED 3999", "MOVED 16384 h:1", "MOVED -1 h:1", "MOVED x h:1", "ASK 1 h",
                            "ASK 1 h:0", "moved 1 h:1", "ERR wrong", "MOVED 1 :6380", "CLUSTERDOWN The cluster is down"})
        EXPECT_FALSE(parse_redirect(bad)) << bad;
}

// A reply as hiredis builds it from the wire.
struct Parsed {
    explicit Parsed(const std::string &resp) {
        redisReader *r = redisReaderCreate();
        redisReaderFeed(r, resp.data(), resp.size());
        void *out = nullptr;
        EXPECT_EQ(redisReaderGetReply(r, &out), REDIS_OK);
        redisReaderFree(r);
        reply = static_cast<redisReply *>(out);
    }
    ~Parsed() {
        if (reply) freeReplyObject(reply);
    }
    redisReply *reply = nullptr;
};

std::string range(int first, int last, const std::string &host, int port) {
    return "*3\r\n:" + std::to_string(first) + "\r\n:" + std::to_string(last) + "\r\n*3\r\n$" +
           std::to_string(host.size()) + "\r\n" + host + "\r\n:" + std::to_string(port) + "\r\n$2\r\nid\r\n";
}

TEST(SlotMap, LoadsClusterSlotsAndFollowsMoved) {
    Parsed p("*3\r\n" + range(0, 5460, "10.0.0.1", 7000) + range(5461, 10922, "10.0.0.2", 7000) +
             range(10923, 16383, "", 7002));
    ASSERT_TRUE(p.reply);
    SlotMap map;
    EXPECT_EQ(map.master(0), nullptr);
    std::string err;
    ASSERT_TRUE(map.load(p.reply, err, HostPort{"10.0.0.3", 7001})) << err;
    EXPECT_EQ(*map.master(0), (HostPort{"10.0.0.1", 7000}));
    EXPECT_EQ(*map.master(5460), (HostPort{"10.0.0.1", 7000}));
    EXPECT_EQ(*map.master(5461), (HostPort{"10.0.0.2", 7000}));
    EXPECT_EQ(*map.master(16383), (HostPort{"10.0.0.3", 7002}));  // empty host: the node asked
    EXPECT_EQ(map.masters().size(), 3u);
    map.moved(100, HostPort{"10.0.0.2", 7000});
    EXPECT_EQ(*map.master(100), (HostPort{"10.0.0.2", 7000}));
    EXPECT_EQ(*map.master(101), (HostPort{"10.0.0.1", 7000}));
    map.moved(101, HostPort{"10.0.0.4", 7000});  // a node it did not know
    EXPECT_EQ(*map.master(101), (HostPort{"10.0.0.4", 7000}));
}

TEST(SlotMap, UncoveredSlotsAndBadRepliesLeaveItAsItWas) {
    Parsed half("*1\r\n" + range(0, 8191, "h", 1));
    SlotMap map;
    std::string err;
    ASSERT_TRUE(map.load(half.reply, err)) << err;
    EXPECT_NE(map.master(8191), nullptr);
    EXPECT_EQ(map.master(8192), nullptr);
    for (const std::string &bad : {std::string("+OK\r\n"), std::string("*1\r\n:1\r\n"), "*1\r\n" + range(5, 4, "h", 1),
                                   "*1\r\n" + range(0, 16384, "h", 1), "*1\r\n" + range(0, 1, "h", 0)}) {
        Parsed p(bad);
        EXPECT_FALSE(map.load(p.reply, err)) << bad;
        EXPECT_NE(map.master(0), nullptr) << "a bad reply must not empty the map";
    }
}

}  // namespace
}  // namespace aurora::plugin
