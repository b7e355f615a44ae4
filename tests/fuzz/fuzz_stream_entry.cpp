// The ingest plugin's reading of Redis stream replies (plugins/ingest/
// stream_entry.h) and the documents built from them (message_document.h).
// The first byte picks the input's shape:
//   even  structured: the rest is cut into an XREADGROUP reply, entries of
//         an id and field/value pairs (a few elements of other types, nil
//         field lists and odd counts included);
//   odd   RESP bytes, read by hiredis's own reply reader (as the consumer's
//         connection does) and handed over as XREADGROUP and XAUTOCLAIM
//         replies.
// Every entry is then built into a BSON document. Invariants: a stored
// document has the entry's roomId, streamId and a 24-hex userId, and a
// refused entry says why.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "fuzz_check.h"
#include "change_fold.h"
#include "search_tokens.h"
#include "message_document.h"
#include "stream_entry.h"

using namespace aurora::ingest;

namespace {

// Reply objects built by hand (hiredis would allocate them itself).
struct Builder {
    std::deque<redisReply> replies;
    std::deque<std::vector<redisReply *>> arrays;
    std::deque<std::string> strings;

    redisReply *str(std::string s) {
        strings.push_back(std::move(s));
        redisReply &r = replies.emplace_back();
        std::memset(&r, 0, sizeof r);
        r.type = REDIS_REPLY_STRING;
        r.str = strings.back().data();
        r.len = strings.back().size();
        return &r;
    }
    redisReply *other(int type) {
        redisReply &r = replies.emplace_back();
        std::memset(&r, 0, sizeof r);
        r.type = type;
        return &r;
    }
    redisReply *array(std::vector<redisReply *> elems) {
        arrays.push_back(std::move(elems));
        redisReply &r = replies.emplace_back();
        std::memset(&r, 0, sizeof r);
        r.type = REDIS_REPLY_ARRAY;
        r.elements = arrays.back().size();
        r.element = arrays.back().data();
        return &r;
    }
};

// Odd element types now and then, so that every type check is exercised.
redisReply *element(Builder &b, FuzzedDataProvider &in) {
    uint8_t t = in.ConsumeIntegral<uint8_t>();
    if (t < 240) return b.str(in.ConsumeRandomLengthString(256));
    if (t < 245) return b.other(REDIS_REPLY_NIL);
    if (t < 250) return b.other(REDIS_REPLY_INTEGER);
    return b.array({});
}

const redisReply *structured(Builder &b, FuzzedDataProvider &in) {
    std::vector<redisReply *> entries;
    while (in.remaining_bytes() > 0 && entries.size() < 32) {
        std::vector<redisReply *> entry{element(b, in)};  // the id
        uint8_t shape = in.ConsumeIntegral<uint8_t>();
        if (shape < 8) {
            entry.push_back(b.other(REDIS_REPLY_NIL));  // deleted: nil fields
        } else if (shape >= 16) {
            std::vector<redisReply *> kv;
            size_t n = in.ConsumeIntegralInRange<size_t>(0, 12);
            for (size_t k = 0; k < n && in.remaining_bytes() > 0; ++k) kv.push_back(element(b, in));
            entry.push_back(b.array(std::move(kv)));
        }  // else: an entry with no second element
        entries.push_back(b.array(std::move(entry)));
    }
    redisReply *stream = b.array({b.str("chat:messages"), b.array(std::move(entries))});
    return b.array({stream});
}

// A change entry (message_changes.h): stored with its own id, the target's
// id, and a kind that is one of the three, or refused with a reason.
void build_change(const StreamEntry &e) {
    bson_t doc = BSON_INITIALIZER;
    std::optional<std::string> why = build_change_document(e, &doc, e.sid.seq % 2 == 1);
    if (why) {
        FUZZ_CHECK(!why->empty());
    } else {
        bson_iter_t it;
        FUZZ_CHECK(bson_iter_init_find(&it, &doc, "streamId") && BSON_ITER_HOLDS_UTF8(&it));
        FUZZ_CHECK(std::string_view(bson_iter_utf8(&it, nullptr)) == std::string_view(e.id.c_str()));
        FUZZ_CHECK(bson_iter_init_find(&it, &doc, "targetId") && BSON_ITER_HOLDS_UTF8(&it));
        FUZZ_CHECK(StreamId::parse(bson_iter_utf8(&it, nullptr)).has_value());
        FUZZ_CHECK(bson_iter_init_find(&it, &doc, "key") && BSON_ITER_HOLDS_UTF8(&it));
        FUZZ_CHECK(std::string_view(bson_iter_utf8(&it, nullptr)) == sortable_id(e.sid));
        const std::string *kind = e.field("kind");
        FUZZ_CHECK(kind && (*kind == "edit" || *kind == "delete" || *kind == "reaction"));
    }
    bson_destroy(&doc);
}

void build(const std::vector<StreamEntry> &entries) {
    for (const StreamEntry &e : entries) {
        if (is_change(e)) {
            build_change(e);
            continue;
        }
        if (const std::string *text = e.field("text")) {
            // Search words: distinct, short, no ASCII capital, at most the bound.
            std::vector<std::string> words = search_tokens(*text);
            FUZZ_CHECK(words.size() <= kMaxMessageTokens);
            for (size_t i = 0; i < words.size(); ++i) {
                FUZZ_CHECK(!words[i].empty() && words[i].size() <= kMaxTokenBytes);
                FUZZ_CHECK(words[i].find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ .*$|^(){}[]\\\"") == std::string::npos);
                for (size_t k = 0; k < i; ++k) FUZZ_CHECK(words[k] != words[i]);
            }
        }
        bson_t doc = BSON_INITIALIZER;
        std::optional<std::string> why = build_document(e, &doc, false, e.sid.seq % 2 == 1);
        if (why) {
            FUZZ_CHECK(!why->empty());
        } else {
            FUZZ_CHECK(!e.deleted || !e.fields.empty());
            bson_iter_t it;
            FUZZ_CHECK(bson_iter_init_find(&it, &doc, "userId") && BSON_ITER_HOLDS_OID(&it));
            FUZZ_CHECK(bson_iter_init_find(&it, &doc, "streamId") && BSON_ITER_HOLDS_UTF8(&it));
            FUZZ_CHECK(std::string_view(bson_iter_utf8(&it, nullptr)) == std::string_view(e.id.c_str()));
            FUZZ_CHECK(bson_iter_init_find(&it, &doc, "createdAt") && BSON_ITER_HOLDS_DATE_TIME(&it));
            FUZZ_CHECK(bson_iter_date_time(&it) == static_cast<int64_t>(e.sid.ms));
            const std::string *room = e.field("roomId");
            FUZZ_CHECK(room && !room->empty());
            FUZZ_CHECK(bson_iter_init_find(&it, &doc, "text") && BSON_ITER_HOLDS_UTF8(&it));
            uint32_t len = 0;
            const char *text = bson_iter_utf8(&it, &len);
            FUZZ_CHECK(e.field("text") && std::string_view(text, len) == *e.field("text"));
        }
        bson_destroy(&doc);
    }
}

// hiredis 0.14 allocates what a RESP header announces ("*2000000000"): keep
// counts and lengths small so that the run measures our code, not malloc.
bool small_resp(std::string_view s) {
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '*' && s[i] != '$') continue;
        size_t n = 0, k = i + 1;
        while (k < s.size() && s[k] >= '0' && s[k] <= '9' && n <= 100000) n = n * 10 + (s[k++] - '0');
        if (n > (s[i] == '*' ? 4096u : 65536u)) return false;
    }
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    if (data[0] % 2 == 0) {
        FuzzedDataProvider in(data + 1, size - 1);
        Builder b;
        const redisReply *reply = structured(b, in);
        build(parse_readgroup(reply));
        return 0;
    }
    std::string_view resp = fuzz_bytes(data + 1, size - 1);
    if (!small_resp(resp)) return 0;
    redisReader *reader = redisReaderCreate();
    if (redisReaderFeed(reader, resp.data(), resp.size()) == REDIS_OK) {
        for (int n = 0; n < 16; ++n) {
            void *raw = nullptr;
            if (redisReaderGetReply(reader, &raw) != REDIS_OK || !raw) break;
            auto *reply = static_cast<redisReply *>(raw);
            build(parse_readgroup(reply));
            // XAUTOCLAIM: [next-id, entries, deleted ids]
            if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2) build(parse_entries(reply->element[1]));
            build(parse_entries(reply));
            freeReplyObject(reply);
        }
    }
    redisReaderFree(reader);
    return 0;
}
