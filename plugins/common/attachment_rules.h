// What chat, ingest and the upload route agree on about attachments
// (docs/protocol.md, Attachments): an upload's id, where it is served, and
// how many one message may name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "json.h"

namespace aurora::plugin {

// 128 random bits as 32 lowercase hex digits.
inline constexpr size_t kUploadIdHex = 32;
inline bool valid_upload_id(std::string_view id) {
    return id.size() == kUploadIdHex && id.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

inline constexpr std::string_view kUploadsPath = "/api/uploads/";  // + id: where an upload is served
inline constexpr size_t kMaxAttachments = 10;                       // uploads one message may name

// One upload's description as a message carries it (its url is always
// kUploadsPath + id); nullopt unless id, fileType, filename and size are
// there and right. Views into `a`.
struct Attachment {
    std::string_view id, type, filename;
    int64_t size = 0;
};
inline std::optional<Attachment> read_attachment(const cJSON *a) {
    const char *id = get_string(a, "id");
    const char *type = get_string(a, "fileType");
    const char *name = get_string(a, "filename");
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(a, "size");
    if (!id || !valid_upload_id(id) || !type || !name || !cJSON_IsNumber(size) || size->valuedouble < 0 ||
        size->valuedouble > 1e15)
        return std::nullopt;
    return Attachment{id, type, name, static_cast<int64_t>(size->valuedouble)};
}

}  // namespace aurora::plugin
