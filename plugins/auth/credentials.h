// Parses and checks the body of /api/auth/register and /api/auth/login:
// {"username": string, "password": string}. Anything that is not exactly two
// strings within the rules is refused here, so a non-string (such as the
// object {"$ne": null}) never reaches a database query. A body over
// kMaxBodyBytes is refused before it is parsed: the largest valid one (32 +
// 128 characters, every one \u-escaped) is about 1 KiB, and the host's own
// limit (http_max_body_bytes, 64 KiB) would let the service thread parse 64
// times more per request. Pure; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace aurora::auth {

struct Credentials {
    bool ok = false;
    uint16_t status = 400;  // when !ok: 400, or 413 for a body over kMaxBodyBytes
    std::string error;      // the message when !ok
    std::string username;
    std::string password;
};

constexpr size_t kUsernameMin = 3, kUsernameMax = 32;
constexpr size_t kPasswordMin = 8, kPasswordMax = 128;
constexpr size_t kMaxBodyBytes = 4096;

Credentials parse_credentials(std::string_view body);

// 3-32 characters of [A-Za-z0-9_.-].
bool valid_username(std::string_view name);

}  // namespace aurora::auth
