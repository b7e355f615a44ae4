#include "token_verifier.h"

#include <cerrno>
#include <cmath>

#include "json.h"
#include "jwt_handle.h"

namespace aurora::plugin {

namespace {

VerifiedToken refuse(const char *why) {
    VerifiedToken t;
    t.error = why;
    return t;
}

// A NumericDate claim: a finite number that fits in int64 (RFC 7519 §2).
bool numeric_date(const cJSON *v, int64_t &out) {
    if (!cJSON_IsNumber(v) || !std::isfinite(v->valuedouble) || v->valuedouble < -9e15 || v->valuedouble > 9e15)
        return false;
    out = static_cast<int64_t>(std::floor(v->valuedouble));
    return true;
}

}  // namespace

VerifiedToken verify_token(std::string_view token, std::string_view secret, jwt_alg_t alg, int64_t now_s,
                           int64_t leeway_s) {
    if (token.empty()) return refuse("no token");
    // Three base64url parts; anything else never reaches the parser.
    if (token.size() > 8192 || token.find('\0') != std::string_view::npos) return refuse("malformed token");
    size_t dots = 0;
    for (char c : token) {
        if (c == '.') ++dots;
        else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '='))
            return refuse("malformed token");
    }
    if (dots != 2) return refuse("malformed token");

    const std::string text(token);  // libjwt wants a NUL-terminated string
    jwt_t *raw = nullptr;
    // With a key, jwt_decode verifies the signature with the algorithm named
    // in the header and refuses "none". It does not pin the algorithm.
    int rc = jwt_decode(&raw, text.c_str(), reinterpret_cast<const unsigned char *>(secret.data()),
                        static_cast<int>(secret.size()));
    JwtHandle jwt(raw);
    if (rc != 0 || !jwt) return refuse("bad signature or malformed token");
    if (jwt_get_alg(jwt.get()) != alg) return refuse("unexpected algorithm");

    // The claims as JSON, so that types are checked here, not guessed.
    JwtText claims_text(jwt_get_grants_json(jwt.get(), nullptr));
    if (!claims_text) return refuse("no claims");
    Json claims = parse_json(std::string_view(claims_text.get()));
    if (!claims || !cJSON_IsObject(claims.get())) return refuse("claims are not an object");

    int64_t exp = 0, nbf = 0;
    if (!numeric_date(cJSON_GetObjectItemCaseSensitive(claims.get(), "exp"), exp)) return refuse("no valid exp claim");
    if (now_s >= exp + leeway_s) return refuse("token expired");
    if (const cJSON *v = cJSON_GetObjectItemCaseSensitive(claims.get(), "nbf")) {
        if (!numeric_date(v, nbf)) return refuse("invalid nbf claim");
        if (now_s + leeway_s < nbf) return refuse("token not valid yet");
    }
    const char *user_id = get_string(claims.get(), "userId");
    const char *username = get_string(claims.get(), "username");
    if (!user_id || !*user_id) return refuse("no userId claim");
    if (!username || !*username) return refuse("no username claim");

    VerifiedToken t;
    t.ok = true;
    t.user_id = user_id;
    t.username = username;
    t.exp = exp;
    return t;
}

}  // namespace aurora::plugin
