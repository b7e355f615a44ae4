// Verifies a bearer token (JWT) -- the auth plugin's handshake, the ingest
// plugin's history route, the rooms plugin's REST routes. Two kinds:
//
// - HMAC tokens (HS256/384/512), signed with the shared jwt.secret: the
//   user service's (the auth plugin issues them), with `userId` and
//   `username` claims.
// - Tokens signed by an identity provider's keys (RS256/384/512,
//   ES256/384/512), verified with the public key its `kid` names (token_keys.h),
//   with `iss` and `aud` checked when configured and the user's id and name
//   read from configurable claims (`sub` and `preferred_username` by default).
//
// The algorithm is read from the header and checked before any signature
// is: an HS token is verified only with jwt.secret and only if its algorithm
// is the configured one; a key-signed token only with a key of its family
// (an RSA public key is never used as an HMAC secret: no algorithm
// confusion). `exp` must be in the future and `nbf` (if present) in the
// past, both with a leeway. libjwt 1.10 checks only the signature (and
// refuses `alg: none` when given a key); everything else is done here.
// Pure and thread-safe: no I/O.
#pragma once

#include <jwt.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "token_keys.h"

namespace aurora::plugin {

struct VerifiedToken {
    bool ok = false;
    std::string error;     // why it was refused (for the log and the 401 body)
    std::string user_id;   // the userId claim (or the mapped one)
    std::string username;  // the username claim (or the mapped one)
    int64_t exp = 0;
    bool unknown_kid = false;  // refused because no key has the token's kid (a key set to refresh?)
};

struct TokenPolicy {
    std::string secret;  // the HMAC key; empty: HMAC tokens are refused
    jwt_alg_t hmac_alg = JWT_ALG_HS256;
    // Key-signed tokens only (empty: not checked):
    std::string issuer;    // `iss` must equal it ("*": any)
    std::string audience;  // `aud` (a string or an array of strings) must hold it ("*": any)
    std::string user_id_claim = "sub";
    std::string username_claim = "preferred_username";
};

// Longest user id taken from a key-signed token; it must be printable ASCII
// without spaces (it ends up in Redis keys, logs and frames).
inline constexpr size_t kMaxTokenUserId = 128;
// Keys without a kid a token is tried against, at most.
inline constexpr int kMaxKeyTries = 4;

// `keys` may be null (no identity provider). `now_s` is Unix time in
// seconds; `leeway_s` absorbs clock skew between the issuer and this host.
VerifiedToken verify_token(std::string_view token, const TokenPolicy &policy, const KeySet *keys, int64_t now_s,
                           int64_t leeway_s);

// HMAC only (the user service's tokens).
VerifiedToken verify_token(std::string_view token, std::string_view secret, jwt_alg_t alg, int64_t now_s,
                           int64_t leeway_s);

}  // namespace aurora::plugin
