#include "upload_store.h"

#include <algorithm>
#include <atomic>

namespace aurora::ingest {

namespace {

struct BucketDelete {
    void operator()(mongoc_gridfs_bucket_t *b) const { mongoc_gridfs_bucket_destroy(b); }
};
struct StreamDelete {
    void operator()(mongoc_stream_t *s) const { mongoc_stream_destroy(s); }
};
struct DatabaseDelete {
    void operator()(mongoc_database_t *d) const { mongoc_database_destroy(d); }
};

bson_value_t id_value(const std::string &id) {
    bson_value_t v{};
    v.value_type = BSON_TYPE_UTF8;
    v.value.v_utf8.str = const_cast<char *>(id.c_str());  // read only by the driver
    v.value.v_utf8.len = static_cast<uint32_t>(id.size());
    return v;
}

constexpr int32_t kChunkBytes = 255 * 1024;  // GridFS's default chunk size, set explicitly (see put)

class GridFsStore final : public UploadStore {
public:
    GridFsStore(plugin::MongoPool &pool, std::string bucket) : pool_(pool), bucket_(std::move(bucket)) {}

    bool put(const UploadInfo &info, std::string_view data, std::string &error) override {
        auto client = pool_.acquire();
        if (!ensure_index(client.get(), error)) return false;
        bson_error_t e{};
        auto bucket = open(client.get(), e);
        if (!bucket) return fail(error, "open bucket", e);
        plugin::Bson opts(BCON_NEW("chunkSizeBytes", BCON_INT32(kChunkBytes)));
        bson_t meta;
        BSON_APPEND_DOCUMENT_BEGIN(opts.get(), "metadata", &meta);
        BSON_APPEND_UTF8(&meta, "userId", info.user_id.c_str());
        BSON_APPEND_UTF8(&meta, "contentType", info.type.c_str());
        bson_append_document_end(opts.get(), &meta);
        const bson_value_t id = id_value(info.id);
        std::unique_ptr<mongoc_stream_t, StreamDelete> up(
            mongoc_gridfs_bucket_open_upload_stream_with_id(bucket.get(), &id, info.filename.c_str(), opts.get(), &e));
        if (!up) return fail(error, "open upload", e);
        // One chunk per write, checked after each: libmongoc 1.23's writev
        // ignores a failed chunk insert and, with more bytes of the same
        // write to place, retries it for ever.
        size_t off = 0;
        while (off < data.size()) {
            const size_t n = std::min<size_t>(data.size() - off, kChunkBytes);
            mongoc_iovec_t iov;
            iov.iov_base = const_cast<char *>(data.data() + off);
            iov.iov_len = n;
            if (mongoc_stream_writev(up.get(), &iov, 1, 0) != static_cast<ssize_t>(n)) break;
            if (mongoc_gridfs_bucket_stream_error(up.get(), &e)) break;
            off += n;
        }
        // close() writes the last chunk and then the files document: the
        // file exists only once it returns 0.
        if (off == data.size() && mongoc_stream_close(up.get()) == 0) return true;
        if (!mongoc_gridfs_bucket_stream_error(up.get(), &e))
            bson_set_error(&e, MONGOC_ERROR_GRIDFS, MONGOC_ERROR_GRIDFS_CHUNK_MISSING, "the upload stream failed");
        (void)mongoc_gridfs_bucket_abort_upload(up.get());  // the chunks written so far (refused once closed)
        up.reset();
        std::string ignored;
        remove(info.id, ignored);  // whatever a failed close left
        return fail(error, "upload", e);
    }

    Found get(const std::string &id, UploadInfo &info, std::string &data, std::string &error) override {
        auto client = pool_.acquire();
        plugin::Collection files(mongoc_client_get_collection(client.get(), pool_.database().c_str(),
                                                              (bucket_ + ".files").c_str()));
        plugin::Bson filter(BCON_NEW("_id", BCON_UTF8(id.c_str())));
        plugin::Cursor cursor(mongoc_collection_find_with_opts(files.get(), filter.get(), nullptr, nullptr));
        const bson_t *doc = nullptr;
        bson_error_t e{};
        if (!mongoc_cursor_next(cursor.get(), &doc)) {
            if (mongoc_cursor_error(cursor.get(), &e)) return fail(error, "find", e), Found::Failed;
            return Found::No;
        }
        info.id = id;
        info.filename = plugin::bson_string(doc, "filename");
        bson_iter_t it, child;
        if (bson_iter_init_find(&it, doc, "length") && BSON_ITER_HOLDS_NUMBER(&it)) info.size = bson_iter_as_int64(&it);
        if (bson_iter_init_find(&it, doc, "uploadDate") && BSON_ITER_HOLDS_DATE_TIME(&it))
            info.uploaded_ms = bson_iter_date_time(&it);
        if (bson_iter_init_find(&it, doc, "metadata") && BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &child)) {
            while (bson_iter_next(&child)) {
                if (!BSON_ITER_HOLDS_UTF8(&child)) continue;
                const std::string_view key = bson_iter_key(&child);
                if (key == "userId") info.user_id = bson_iter_utf8(&child, nullptr);
                if (key == "contentType") info.type = bson_iter_utf8(&child, nullptr);
            }
        }
        cursor.reset();
        auto bucket = open(client.get(), e);
        if (!bucket) return fail(error, "open bucket", e), Found::Failed;
        const bson_value_t vid = id_value(id);
        std::unique_ptr<mongoc_stream_t, StreamDelete> down(mongoc_gridfs_bucket_open_download_stream(bucket.get(), &vid, &e));
        if (!down) return fail(error, "open download", e), Found::Failed;
        data.clear();
        data.reserve(static_cast<size_t>(std::max<int64_t>(info.size, 0)));
        char buf[64 * 1024];
        for (;;) {
            ssize_t n = mongoc_stream_read(down.get(), buf, sizeof buf, 1, 0);
            const bool stream_failed = mongoc_gridfs_bucket_stream_error(down.get(), &e);
            if (n < 0 && !stream_failed)
                bson_set_error(&e, MONGOC_ERROR_GRIDFS, MONGOC_ERROR_GRIDFS_CHUNK_MISSING, "the download stream failed");
            if (n < 0 || stream_failed) return fail(error, "download", e), Found::Failed;
            if (n == 0) break;
            data.append(buf, static_cast<size_t>(n));
        }
        if (static_cast<int64_t>(data.size()) != info.size) {
            error = "download: " + std::to_string(data.size()) + " bytes of " + std::to_string(info.size);
            return Found::Failed;
        }
        return Found::Yes;
    }

    std::optional<int64_t> used_bytes(const std::string &user_id, std::string &error) override {
        auto client = pool_.acquire();
        if (!ensure_index(client.get(), error)) return std::nullopt;
        plugin::Collection files(mongoc_client_get_collection(client.get(), pool_.database().c_str(),
                                                              (bucket_ + ".files").c_str()));
        plugin::Bson pipeline(BCON_NEW("pipeline", "[", "{", "$match", "{", "metadata.userId", BCON_UTF8(user_id.c_str()),
                                       "}", "}", "{", "$group", "{", "_id", BCON_NULL, "total", "{", "$sum",
                                       BCON_UTF8("$length"), "}", "}", "}", "]"));
        plugin::Cursor cursor(mongoc_collection_aggregate(files.get(), MONGOC_QUERY_NONE, pipeline.get(), nullptr, nullptr));
        const bson_t *doc = nullptr;
        bson_error_t e{};
        if (!mongoc_cursor_next(cursor.get(), &doc)) {
            if (mongoc_cursor_error(cursor.get(), &e)) return fail(error, "quota sum", e), std::nullopt;
            return 0;
        }
        bson_iter_t it;
        return bson_iter_init_find(&it, doc, "total") && BSON_ITER_HOLDS_NUMBER(&it) ? bson_iter_as_int64(&it) : 0;
    }

    bool remove(const std::string &id, std::string &error) override {
        auto client = pool_.acquire();
        bson_error_t e{};
        auto bucket = open(client.get(), e);
        if (!bucket) return fail(error, "open bucket", e);
        const bson_value_t vid = id_value(id);
        if (!mongoc_gridfs_bucket_delete_by_id(bucket.get(), &vid, &e)) return fail(error, "delete", e);
        return true;
    }

private:
    std::unique_ptr<mongoc_gridfs_bucket_t, BucketDelete> open(mongoc_client_t *client, bson_error_t &e) {
        std::unique_ptr<mongoc_database_t, DatabaseDelete> db(mongoc_client_get_database(client, pool_.database().c_str()));
        plugin::Bson opts(BCON_NEW("bucketName", BCON_UTF8(bucket_.c_str())));
        return std::unique_ptr<mongoc_gridfs_bucket_t, BucketDelete>(
            mongoc_gridfs_bucket_new(db.get(), opts.get(), nullptr, &e));
    }

    // {metadata.userId: 1} on the files collection, for the quota's sum:
    // once per process (a failure is retried by the next call).
    bool ensure_index(mongoc_client_t *client, std::string &error) {
        if (indexed_.load()) return true;
        std::unique_ptr<mongoc_database_t, DatabaseDelete> db(mongoc_client_get_database(client, pool_.database().c_str()));
        const std::string files = bucket_ + ".files";
        plugin::Bson cmd(BCON_NEW("createIndexes", BCON_UTF8(files.c_str()), "indexes", "[", "{", "key", "{",
                                  "metadata.userId", BCON_INT32(1), "}", "name", BCON_UTF8("metadata.userId_1"), "}", "]"));
        bson_t reply;
        bson_error_t e{};
        const bool ok = mongoc_database_write_command_with_opts(db.get(), cmd.get(), nullptr, &reply, &e);
        bson_destroy(&reply);
        if (!ok) return fail(error, "create index", e);
        indexed_ = true;
        return true;
    }

    static bool fail(std::string &error, const char *what, const bson_error_t &e) {
        error = std::string(what) + ": " + e.message;
        return false;
    }

    plugin::MongoPool &pool_;
    const std::string bucket_;
    std::atomic<bool> indexed_{false};
};

}  // namespace

std::unique_ptr<UploadStore> gridfs_store(plugin::MongoPool &pool, std::string bucket) {
    return std::make_unique<GridFsStore>(pool, std::move(bucket));
}

}  // namespace aurora::ingest
