#include "message_writer.h"

#include <string_view>

#include <mongoc/mongoc.h>

#include <span>

namespace aurora::ingest {

namespace {
constexpr int32_t kDuplicateKey = 11000;
}

WriteResult MessageWriter::insert(const std::vector<const bson_t *> &docs) const {
    WriteResult out;
    out.docs.assign(docs.size(), WriteResult::Doc::Stored);
    out.errors.assign(docs.size(), std::string());
    if (docs.empty()) return out;
    auto client = pool_.acquire();
    plugin::Collection coll(mongoc_client_get_collection(client.get(), pool_.database().c_str(), collection_.c_str()));
    bson_t opts = BSON_INITIALIZER;
    BSON_APPEND_BOOL(&opts, "ordered", false);
    bson_t reply;
    bson_error_t error;
    std::vector<const bson_t *> mutable_docs(docs);
    bool ok = mongoc_collection_insert_many(coll.get(), mutable_docs.data(), mutable_docs.size(), &opts, &reply, &error);
    bson_destroy(&opts);
    if (ok) {
        bson_destroy(&reply);
        return out;
    }
    // Per-document errors (writeErrors) mean the batch reached the server and
    // every document not listed was inserted. Anything else: unknown outcome.
    bson_iter_t it, arr;
    bool per_doc = bson_iter_init_find(&it, &reply, "writeErrors") && BSON_ITER_HOLDS_ARRAY(&it) &&
                   bson_iter_recurse(&it, &arr);
    bson_iter_t wc;
    bool concern = bson_iter_init_find(&wc, &reply, "writeConcernErrors") && BSON_ITER_HOLDS_ARRAY(&wc) &&
                   bson_iter_recurse(&wc, &wc) && bson_iter_next(&wc);
    size_t listed = 0;
    if (per_doc && !concern) {
        while (bson_iter_next(&arr)) {
            bson_iter_t e;
            if (!BSON_ITER_HOLDS_DOCUMENT(&arr) || !bson_iter_recurse(&arr, &e)) continue;
            int64_t index = -1;
            int32_t code = 0;
            std::string msg;
            while (bson_iter_next(&e)) {
                std::string_view key = bson_iter_key(&e);
                if (key == "index" && BSON_ITER_HOLDS_NUMBER(&e)) index = bson_iter_as_int64(&e);
                else if (key == "code" && BSON_ITER_HOLDS_NUMBER(&e)) code = static_cast<int32_t>(bson_iter_as_int64(&e));
                else if (key == "errmsg" && BSON_ITER_HOLDS_UTF8(&e)) msg = bson_iter_utf8(&e, nullptr);
            }
            if (index < 0 || static_cast<size_t>(index) >= docs.size()) {
                per_doc = false;
                break;
            }
            ++listed;
            if (code == kDuplicateKey) {
                out.docs[index] = WriteResult::Doc::Duplicate;
            } else {
                out.docs[index] = WriteResult::Doc::Refused;
                out.errors[index] = "MongoDB error " + std::to_string(code) + ": " + msg;
            }
        }
    }
    if (!per_doc || concern || listed == 0) {
        out.unavailable = true;
        out.error = error.message;
        out.docs.assign(docs.size(), WriteResult::Doc::Refused);
    }
    bson_destroy(&reply);
    return out;
}

bool create_indexes(plugin::MongoPool &pool, const std::string &collection, bool secondary, UniqueKey key,
                    bool cluster, IndexReport &report, std::string &error) {
    auto client = pool.acquire();
    plugin::Collection coll(mongoc_client_get_collection(client.get(), pool.database().c_str(), collection.c_str()));
    // One createIndexes per index: FerretDB 1.24 (SQLite) drops the
    // connection (a panic) when one command lists several indexes that all
    // exist already, which is every start-up after the first.
    const char *name = collection.c_str();
    const bool per_room = key == UniqueKey::RoomStreamId;
    plugin::Bson cmds[] = {
        per_room ? plugin::Bson(BCON_NEW("createIndexes", BCON_UTF8(name), "indexes", "[", "{", "key", "{", "roomId",
                                         BCON_INT32(1), "streamId", BCON_INT32(1), "}", "name",
                                         BCON_UTF8("roomId_1_streamId_1"), "unique", BCON_BOOL(true), "}", "]"))
                 : plugin::Bson(BCON_NEW("createIndexes", BCON_UTF8(name), "indexes", "[", "{", "key", "{", "streamId",
                                         BCON_INT32(1), "}", "name", BCON_UTF8("streamId_1"), "unique",
                                         BCON_BOOL(true), "}", "]")),
        plugin::Bson(BCON_NEW("createIndexes", BCON_UTF8(name), "indexes", "[", "{", "key", "{", "roomId",
                              BCON_INT32(1), "createdAt", BCON_INT32(-1), "}", "name",
                              BCON_UTF8("roomId_1_createdAt_-1"), "}", "]")),
        plugin::Bson(BCON_NEW("createIndexes", BCON_UTF8(name), "indexes", "[", "{", "key", "{", "userId",
                              BCON_INT32(1), "}", "name", BCON_UTF8("userId_1"), "}", "]")),
    };
    if (per_room) {
        plugin::Cursor idx(mongoc_collection_find_indexes_with_opts(coll.get(), nullptr));
        const bson_t *doc = nullptr;
        while (mongoc_cursor_next(idx.get(), &doc)) {
            bson_iter_t it;
            if (bson_iter_init_find(&it, doc, "name") && BSON_ITER_HOLDS_UTF8(&it) &&
                std::string_view(bson_iter_utf8(&it, nullptr)) == "streamId_1")
                report.stream_index_left = true;
        }
        bson_error_t err;
        if (mongoc_cursor_error(idx.get(), &err) && err.code != 26) {  // 26: NamespaceNotFound, no collection yet
            error = std::string("listIndexes: ") + err.message;
            return false;
        }
        // Two shards may both make "<ms>-0" in one millisecond: the seed's
        // index would take the second for a duplicate and it would be lost.
        if (cluster && report.stream_index_left) {
            error = "the collection has the single-mode unique index streamId_1; in cluster mode two shards may "
                    "make the same id, which it would refuse as a duplicate: drop it "
                    "(db." + collection + ".dropIndex(\"streamId_1\"), docs/scaling.md)";
            return false;
        }
    }
    for (const plugin::Bson &cmd : secondary ? std::span(cmds) : std::span(cmds).first(1)) {
        bson_t reply;
        bson_error_t err;
        bool ok = mongoc_collection_write_command_with_opts(coll.get(), cmd.get(), nullptr, &reply, &err);
        bson_destroy(&reply);
        if (!ok) {
            error = std::string("createIndexes: ") + err.message;
            return false;
        }
    }
    return true;
}

bool ping(plugin::MongoPool &pool, std::string &error) {
    auto client = pool.acquire();
    bson_t *cmd = BCON_NEW("ping", BCON_INT32(1));
    plugin::Bson cmd_guard(cmd);
    bson_t reply;
    bson_error_t err;
    bool ok = mongoc_client_command_simple(client.get(), "admin", cmd, nullptr, &reply, &err);
    bson_destroy(&reply);
    if (!ok) error = err.message;
    return ok;
}

}  // namespace aurora::ingest
