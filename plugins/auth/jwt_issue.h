// Issues the login token: HMAC JWT with userId, username, iat, exp (seed §12.1).
#pragma once

#include <jwt.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace aurora::auth {

// nullopt if libjwt refuses (out of memory, bad algorithm). Thread-safe.
std::optional<std::string> issue_token(std::string_view secret, jwt_alg_t alg, std::string_view user_id,
                                       std::string_view username, int64_t now_s, int64_t ttl_s);

}  // namespace aurora::auth
