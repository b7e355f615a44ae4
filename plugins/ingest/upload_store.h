// Where uploaded files live: an interface (so that an S3-compatible store
// can come later behind it) and its one implementation, MongoDB GridFS
// through libmongoc (a bucket: `<bucket>.files` and `<bucket>.chunks`).
//
// A file's id is chosen by the caller (32 random hex digits); its owner,
// type and upload time are GridFS metadata
// ({metadata: {userId, contentType}}), with an index on metadata.userId for
// the quota's sum.
//
// THREADS: any thread; each call borrows its own client from the pool.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "mongo_pool.h"

namespace aurora::ingest {

struct UploadInfo {
    std::string id, user_id, filename, type;
    int64_t size = 0;
    int64_t uploaded_ms = 0;
};

class UploadStore {
public:
    virtual ~UploadStore() = default;
    // Stores `data` under info.id. False with `error` (nothing is left
    // behind: a partial file is removed).
    virtual bool put(const UploadInfo &info, std::string_view data, std::string &error) = 0;
    enum class Found { Yes, No, Failed };
    // The file and its description; Failed with `error` when the store
    // could not answer.
    virtual Found get(const std::string &id, UploadInfo &info, std::string &data, std::string &error) = 0;
    // Bytes `user_id` keeps in the store; nullopt with `error`.
    virtual std::optional<int64_t> used_bytes(const std::string &user_id, std::string &error) = 0;
    virtual bool remove(const std::string &id, std::string &error) = 0;
};

// GridFS in `pool`'s database. Creates the owner index on first use.
std::unique_ptr<UploadStore> gridfs_store(plugin::MongoPool &pool, std::string bucket);

}  // namespace aurora::ingest
