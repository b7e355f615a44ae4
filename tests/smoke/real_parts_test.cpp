// Proof that the parts are real: round trips against the redis-server and
// FerretDB that tests/support starts. This is the smoke test of the
// environment: if it fails, nothing above it can be trusted.
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <mongoc/mongoc.h>

#include <memory>
#include <string>

#include "real_servers.h"

namespace {

using aurora::testing::RealServers;

struct RedisFree {
    void operator()(redisContext *c) const { redisFree(c); }
};
struct ReplyFree {
    void operator()(redisReply *r) const { freeReplyObject(r); }
};
using RedisPtr = std::unique_ptr<redisContext, RedisFree>;
using ReplyPtr = std::unique_ptr<redisReply, ReplyFree>;

RedisPtr redis_connect() {
    auto &srv = RealServers::redis();
    RedisPtr c(redisConnect(srv.host().c_str(), srv.port()));
    if (!c || c->err) throw std::runtime_error(c ? c->errstr : "redisConnect: out of memory");
    return c;
}

template <typename... Args>
ReplyPtr cmd(redisContext *c, const char *fmt, Args... args) {
    ReplyPtr r(static_cast<redisReply *>(redisCommand(c, fmt, args...)));
    if (!r) throw std::runtime_error(std::string("redis: ") + c->errstr);
    return r;
}

TEST(RedisSmoke, StreamsConsumerGroupRoundTrip) {
    auto c = redis_connect();
    auto id = cmd(c.get(), "XADD chat:messages * roomId %s userId %s text %s username %s", "general",
                  "u1", "hello", "alice");
    ASSERT_EQ(id->type, REDIS_REPLY_STRING);

    auto created = cmd(c.get(), "XGROUP CREATE chat:messages mongo_workers 0 MKSTREAM");
    ASSERT_EQ(created->type, REDIS_REPLY_STATUS) << created->str;
    auto busy = cmd(c.get(), "XGROUP CREATE chat:messages mongo_workers 0 MKSTREAM");
    ASSERT_EQ(busy->type, REDIS_REPLY_ERROR);
    EXPECT_EQ(std::string(busy->str).rfind("BUSYGROUP", 0), 0u) << busy->str;

    auto read = cmd(c.get(), "XREADGROUP GROUP mongo_workers w1 COUNT 10 STREAMS chat:messages >");
    ASSERT_EQ(read->type, REDIS_REPLY_ARRAY);
    ASSERT_EQ(read->elements, 1u);
    redisReply *entries = read->element[0]->element[1];
    ASSERT_EQ(entries->elements, 1u);
    redisReply *entry = entries->element[0];
    EXPECT_STREQ(entry->element[0]->str, id->str);
    redisReply *fields = entry->element[1];
    ASSERT_EQ(fields->elements, 8u);
    EXPECT_STREQ(fields->element[4]->str, "text");
    EXPECT_STREQ(fields->element[5]->str, "hello");

    auto pending = cmd(c.get(), "XPENDING chat:messages mongo_workers");
    EXPECT_EQ(pending->element[0]->integer, 1);
    auto acked = cmd(c.get(), "XACK chat:messages mongo_workers %s", id->str);
    EXPECT_EQ(acked->integer, 1);
    pending = cmd(c.get(), "XPENDING chat:messages mongo_workers");
    EXPECT_EQ(pending->element[0]->integer, 0);
}

TEST(RedisSmoke, PublishReachesPatternSubscriber) {
    auto sub = redis_connect();
    auto pub = redis_connect();
    auto ok = cmd(sub.get(), "PSUBSCRIBE chat.*");
    ASSERT_EQ(ok->type, REDIS_REPLY_ARRAY);
    EXPECT_STREQ(ok->element[0]->str, "psubscribe");

    auto receivers = cmd(pub.get(), "PUBLISH chat.general %s", "{\"text\":\"hi\"}");
    EXPECT_EQ(receivers->integer, 1);

    redisReply *raw = nullptr;
    ASSERT_EQ(redisGetReply(sub.get(), reinterpret_cast<void **>(&raw)), REDIS_OK) << sub->errstr;
    ReplyPtr msg(raw);
    ASSERT_EQ(msg->elements, 4u);
    EXPECT_STREQ(msg->element[0]->str, "pmessage");
    EXPECT_STREQ(msg->element[1]->str, "chat.*");
    EXPECT_STREQ(msg->element[2]->str, "chat.general");
    EXPECT_STREQ(msg->element[3]->str, "{\"text\":\"hi\"}");
}

// --- MongoDB (FerretDB) through libmongoc -------------------------------------------

struct ClientFree {
    void operator()(mongoc_client_t *c) const { mongoc_client_destroy(c); }
};
struct CollFree {
    void operator()(mongoc_collection_t *c) const { mongoc_collection_destroy(c); }
};
struct CursorFree {
    void operator()(mongoc_cursor_t *c) const { mongoc_cursor_destroy(c); }
};
struct BsonFree {
    void operator()(bson_t *b) const { bson_destroy(b); }
};
using BsonPtr = std::unique_ptr<bson_t, BsonFree>;

TEST(MongoSmoke, InsertManyUniqueIndexAndFind) {
    const std::string url = RealServers::mongo().url("aurora_smoke");
    std::unique_ptr<mongoc_client_t, ClientFree> client(mongoc_client_new(url.c_str()));
    ASSERT_TRUE(client);
    std::unique_ptr<mongoc_collection_t, CollFree> coll(
        mongoc_client_get_collection(client.get(), "aurora_smoke", "messages"));
    bson_error_t error;

    // A unique index, as the ingest plugin puts on streamId.
    BsonPtr keys(BCON_NEW("streamId", BCON_INT32(1)));
    BsonPtr create(BCON_NEW("createIndexes", BCON_UTF8("messages"), "indexes", "[", "{", "key",
                            BCON_DOCUMENT(keys.get()), "name", BCON_UTF8("streamId_1"), "unique",
                            BCON_BOOL(true), "}", "]"));
    ASSERT_TRUE(mongoc_collection_write_command_with_opts(coll.get(), create.get(), nullptr, nullptr, &error))
        << error.message;

    // insert_many of 100 documents.
    std::vector<BsonPtr> docs;
    std::vector<const bson_t *> ptrs;
    for (int i = 0; i < 100; ++i) {
        std::string sid = "1700000000000-" + std::to_string(i);
        docs.emplace_back(BCON_NEW("streamId", BCON_UTF8(sid.c_str()), "roomId",
                                   BCON_UTF8(i % 2 ? "general" : "random"), "seq", BCON_INT32(i)));
        ptrs.push_back(docs.back().get());
    }
    bson_t reply;
    bool inserted = mongoc_collection_insert_many(coll.get(), ptrs.data(), ptrs.size(), nullptr, &reply, &error);
    bson_destroy(&reply);
    ASSERT_TRUE(inserted) << error.message;
    EXPECT_EQ(mongoc_collection_count_documents(coll.get(), BsonPtr(bson_new()).get(), nullptr, nullptr, nullptr,
                                                &error),
              100);

    // The unique index rejects a duplicate with code 11000.
    BsonPtr dup(BCON_NEW("streamId", BCON_UTF8("1700000000000-7"), "roomId", BCON_UTF8("general")));
    bool dup_ok = mongoc_collection_insert_one(coll.get(), dup.get(), nullptr, nullptr, &error);
    EXPECT_FALSE(dup_ok);
    EXPECT_EQ(error.code, 11000u) << error.message;

    // find with a filter, sort and limit.
    BsonPtr filter(BCON_NEW("roomId", BCON_UTF8("general")));
    BsonPtr opts(BCON_NEW("sort", "{", "seq", BCON_INT32(-1), "}", "limit", BCON_INT64(5)));
    std::unique_ptr<mongoc_cursor_t, CursorFree> cursor(
        mongoc_collection_find_with_opts(coll.get(), filter.get(), opts.get(), nullptr));
    const bson_t *doc;
    std::vector<int> seqs;
    while (mongoc_cursor_next(cursor.get(), &doc)) {
        bson_iter_t it;
        ASSERT_TRUE(bson_iter_init_find(&it, doc, "seq"));
        seqs.push_back(bson_iter_int32(&it));
    }
    ASSERT_FALSE(mongoc_cursor_error(cursor.get(), &error)) << error.message;
    EXPECT_EQ(seqs, (std::vector<int>{99, 97, 95, 93, 91}));
}

}  // namespace
