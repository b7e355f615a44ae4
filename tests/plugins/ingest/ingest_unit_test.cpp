// The pure pieces of the ingest plugin, in process: stream ids, the
// entry -> document mapping (and what makes an entry poison), the settings
// checks and the MongoDB URL timeouts.
#include <gtest/gtest.h>

#include "ingest_settings.h"
#include "message_document.h"
#include "stream_entry.h"

namespace aurora::ingest {
namespace {

StreamEntry entry(std::map<std::string, std::string> fields, std::string id = "1732284000123-7") {
    StreamEntry e;
    e.id = id;
    e.sid = *StreamId::parse(id);
    e.fields = std::move(fields);
    return e;
}

TEST(StreamIdTest, ParsesAndOrders) {
    EXPECT_EQ(StreamId::parse("1732284000123-7")->seq, 7u);
    EXPECT_EQ(StreamId::parse("1732284000123")->ms, 1732284000123u);
    EXPECT_FALSE(StreamId::parse("abc-1"));
    EXPECT_FALSE(StreamId::parse("1-"));
    EXPECT_FALSE(StreamId::parse(""));
    EXPECT_LT(*StreamId::parse("999-9"), *StreamId::parse("1000-0"));  // not string order
    EXPECT_LT(*StreamId::parse("5-9"), *StreamId::parse("5-10"));
}

TEST(MessageDocumentTest, SeedSchema) {
    bson_t doc = BSON_INITIALIZER;
    auto why = build_document(entry({{"roomId", "general"}, {"userId", "65f0c0ffee0123456789abcd"},
                                     {"text", "hi"}, {"username", "alice"}, {"ref", "r1"}}),
                              &doc);
    ASSERT_FALSE(why) << *why;
    char *json = bson_as_canonical_extended_json(&doc, nullptr);
    std::string s(json);
    bson_free(json);
    bson_destroy(&doc);
    EXPECT_EQ(s,
              "{ \"roomId\" : \"general\", \"userId\" : { \"$oid\" : \"65f0c0ffee0123456789abcd\" }, "
              "\"username\" : \"alice\", \"text\" : \"hi\", \"status\" : \"sent\", \"attachments\" : [  ], "
              "\"createdAt\" : { \"$date\" : { \"$numberLong\" : \"1732284000123\" } }, "
              "\"updatedAt\" : { \"$date\" : { \"$numberLong\" : \"1732284000123\" } }, "
              "\"streamId\" : \"1732284000123-7\" }");
}

TEST(MessageDocumentTest, PoisonEntries) {
    auto poison = [](std::map<std::string, std::string> f) {
        bson_t doc = BSON_INITIALIZER;
        auto why = build_document(entry(std::move(f)), &doc);
        bson_destroy(&doc);
        return why.value_or("");
    };
    EXPECT_NE(poison({{"roomId", "general"}, {"userId", "anon-1f2e-7"}, {"text", "x"}}).find("not an ObjectId"),
              std::string::npos);
    EXPECT_NE(poison({{"roomId", "general"}, {"userId", "65f0c0ffee0123456789abcz"}, {"text", "x"}}), "");
    EXPECT_NE(poison({{"userId", "65f0c0ffee0123456789abcd"}, {"text", "x"}}), "");
    EXPECT_NE(poison({{"roomId", "general"}, {"userId", "65f0c0ffee0123456789abcd"}}), "");
    EXPECT_EQ(poison({{"roomId", "general"}, {"userId", "65f0c0ffee0123456789abcd"}, {"text", ""}}), "");
}

TEST(IngestSettingsTest, ChecksAndDefaults) {
    std::string err;
    auto s = load_settings(AURORA_STR_LIT("{}"), err);
    ASSERT_TRUE(s) << err;
    EXPECT_EQ(s->stream, "chat:messages");
    EXPECT_EQ(s->group, "mongo_workers");
    EXPECT_EQ(s->dead_letter_stream, "chat:messages:dead");
    EXPECT_EQ(s->batch, 500);
    EXPECT_TRUE(s->secondary_indexes);
    EXPECT_EQ(s->block_ms, 5000);
    EXPECT_FALSE(load_settings(AURORA_STR_LIT("{\"batchsize\": 10}"), err));
    EXPECT_FALSE(load_settings(AURORA_STR_LIT("{\"dead_letter_stream\": \"chat:messages\"}"), err));
    EXPECT_FALSE(load_settings(AURORA_STR_LIT("{\"jwt_algorithm\": \"none\"}"), err));
    EXPECT_FALSE(load_settings(AURORA_STR_LIT("{\"history_default_limit\": 500}"), err));
}

TEST(IngestSettingsTest, MongoUrlTimeouts) {
    EXPECT_EQ(mongo_url_with_timeouts("mongodb://h:1/db", 2000),
              "mongodb://h:1/db?serverSelectionTimeoutMS=2000&connectTimeoutMS=2000&heartbeatFrequencyMS=1000");
    EXPECT_EQ(mongo_url_with_timeouts("mongodb://h:1", 2000),
              "mongodb://h:1/?serverSelectionTimeoutMS=2000&connectTimeoutMS=2000&heartbeatFrequencyMS=1000");
    EXPECT_EQ(mongo_url_with_timeouts("mongodb://h:1/db?serverselectiontimeoutms=50&appname=x", 2000),
              "mongodb://h:1/db?serverselectiontimeoutms=50&appname=x&connectTimeoutMS=2000&heartbeatFrequencyMS=1000");
}

}  // namespace
}  // namespace aurora::ingest
