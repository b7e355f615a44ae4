// Verifies a bearer token (HMAC JWT) -- the auth plugin's handshake, the
// ingest plugin's history route, any plugin that trusts the same tokens: the
// algorithm must be exactly the configured one, the signature must match,
// `exp` must be in the future and `nbf` (if present) in the past, both with a
// leeway, and `userId` / `username` must be non-empty strings. libjwt 1.10
// checks only the signature (and refuses `alg: none` when given a key), so
// everything else is done here. Pure and thread-safe: no I/O.
#pragma once

#include <jwt.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace aurora::plugin {

struct VerifiedToken {
    bool ok = false;
    std::string error;     // why it was refused (for the log and the 401 body)
    std::string user_id;   // the userId claim
    std::string username;  // the username claim
    int64_t exp = 0;
};

// `now_s` is Unix time in seconds; `leeway_s` absorbs clock skew between the
// issuer and this host.
VerifiedToken verify_token(std::string_view token, std::string_view secret, jwt_alg_t alg, int64_t now_s,
                           int64_t leeway_s);

}  // namespace aurora::plugin
