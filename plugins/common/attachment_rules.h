// What chat, ingest and the upload route agree on about attachments
// (docs/protocol.md, Attachments): an upload's id, where it is served, and
// how many one message may name.
#pragma once

#include <cstddef>
#include <string_view>

namespace aurora::plugin {

// 128 random bits as 32 lowercase hex digits.
inline constexpr size_t kUploadIdHex = 32;
inline bool valid_upload_id(std::string_view id) {
    return id.size() == kUploadIdHex && id.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

inline constexpr std::string_view kUploadsPath = "/api/uploads/";  // + id: where an upload is served
inline constexpr size_t kMaxAttachments = 10;                       // uploads one message may name

}  // namespace aurora::plugin
