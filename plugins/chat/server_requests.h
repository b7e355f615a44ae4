// What the server API accepts (docs/server-api.md), as pure functions: a
// request body in, a request or a refusal (code and text) out. Fuzzed
// (tests/fuzz/fuzz_server_api.cpp) and unit-tested; server_api.cpp only
// routes and answers.
#pragma once

#include <cjson/cJSON.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aurora::chat {

struct Refusal {
    std::string code, text;  // a code of docs/server-api.md's table, and a sentence
};

// publish ({room, ...}) and broadcast ({rooms: [...], ...}).
struct PublishRequest {
    std::vector<std::string> rooms;  // one for publish, 1-100 distinct for broadcast
    std::string text;
    std::string user_id, username;  // empty: the system user
    std::string ref;                // empty: none
};

// disconnect, ban, unban.
struct TargetRequest {
    std::string user_id;
    std::string reason;      // disconnect, ban: at most kMaxReason characters
    int64_t duration_s = 0;  // ban only
};

enum class TargetKind { Disconnect, Ban, Unban };

inline constexpr size_t kMaxBroadcastRooms = 100;
inline constexpr size_t kMaxReason = 100;              // characters
inline constexpr size_t kMaxCloseReason = 123;         // bytes (RFC 6455 §5.5: a control frame carries at most 125)
inline constexpr int64_t kMaxBanSeconds = 10LL * 365 * 86400;

// `body` is a JSON object with each key once (the caller checked).
std::optional<PublishRequest> parse_publish(const cJSON *body, bool broadcast, size_t max_text_chars, Refusal &why);
std::optional<TargetRequest> parse_target(const cJSON *body, TargetKind kind, Refusal &why);

// `min`..`max` code points of UTF-8 without control characters (C0, DEL, C1).
bool valid_field(std::string_view s, size_t min, size_t max);
// 1-128 such characters, not an anonymous connection's (anon-...).
bool valid_user_id(std::string_view s);
// `text` cut at a character boundary to fit a close frame (kMaxCloseReason bytes).
std::string close_reason(std::string text);

}  // namespace aurora::chat
