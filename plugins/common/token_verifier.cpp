#include "token_verifier.h"

#include <cerrno>
#include <cmath>

#include <openssl/err.h>

#include "json.h"
#include "jwt_handle.h"

namespace aurora::plugin {

namespace {

VerifiedToken refuse(const char *why) {
    VerifiedToken t;
    t.error = why;
    return t;
}

VerifiedToken refuse(std::string why) {
    VerifiedToken t;
    t.error = std::move(why);
    return t;
}

// A NumericDate claim: a finite number that fits in int64 (RFC 7519 §2).
bool numeric_date(const cJSON *v, int64_t &out) {
    if (!cJSON_IsNumber(v) || !std::isfinite(v->valuedouble) || v->valuedouble < -9e15 || v->valuedouble > 9e15)
        return false;
    out = static_cast<int64_t>(std::floor(v->valuedouble));
    return true;
}

bool is_hmac(jwt_alg_t a) { return a == JWT_ALG_HS256 || a == JWT_ALG_HS384 || a == JWT_ALG_HS512; }

bool printable_id(std::string_view s) {
    if (s.empty() || s.size() > kMaxTokenUserId) return false;
    for (unsigned char c : s)
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\') return false;
    return true;
}

bool object_id_shaped(std::string_view s) {
    if (s.size() != 24) return false;
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
    return true;
}

bool no_control(std::string_view s) {
    for (unsigned char c : s)
        if (c < 0x20 || c == 0x7f) return false;
    return true;
}

struct Header {
    std::string alg, kid;
};

// The JOSE header, read before any signature is checked (the algorithm
// decides which key may verify it).
std::optional<Header> read_header(std::string_view token, std::string &why) {
    std::optional<std::string> text = base64url_decode(token.substr(0, token.find('.')));
    Json h = text ? parse_json(*text) : Json();
    if (!h || !cJSON_IsObject(h.get())) {
        why = "malformed token header";
        return std::nullopt;
    }
    Header out;
    const char *alg = get_string(h.get(), "alg");
    if (!alg) {
        why = "malformed token header";
        return std::nullopt;
    }
    out.alg = alg;
    if (const cJSON *kid = cJSON_GetObjectItemCaseSensitive(h.get(), "kid")) {
        if (!cJSON_IsString(kid)) {
            why = "malformed token header";
            return std::nullopt;
        }
        out.kid = kid->valuestring;
    }
    // RFC 7515 §4.1.11: extensions this verifier does not know must be refused.
    if (cJSON_GetObjectItemCaseSensitive(h.get(), "crit")) {
        why = "unsupported critical header";
        return std::nullopt;
    }
    return out;
}

JwtHandle decode(const std::string &text, std::string_view key) {
    jwt_t *raw = nullptr;
    int rc = jwt_decode(&raw, text.c_str(), reinterpret_cast<const unsigned char *>(key.data()),
                        static_cast<int>(key.size()));
    JwtHandle jwt(raw);
    return rc == 0 ? std::move(jwt) : JwtHandle();
}

bool audience_holds(const cJSON *aud, const std::string &want) {
    if (cJSON_IsString(aud)) return want == aud->valuestring;
    if (!cJSON_IsArray(aud)) return false;
    const cJSON *a = nullptr;
    cJSON_ArrayForEach(a, aud) if (cJSON_IsString(a) && want == a->valuestring) return true;
    return false;
}

}  // namespace

VerifiedToken verify_token(std::string_view token, const TokenPolicy &policy, const KeySet *keys, int64_t now_s,
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

    std::string why;
    std::optional<Header> header = read_header(token, why);
    if (!header) return refuse(why);
    const jwt_alg_t alg = jwt_str_alg(header->alg.c_str());
    Json claims;
    const bool by_key = !is_hmac(alg);
    if (!by_key) {
        if (policy.secret.empty()) return refuse("HMAC tokens are not accepted here (no jwt.secret)");
        if (alg != policy.hmac_alg) return refuse("unexpected algorithm");
        const std::string text(token);  // libjwt wants a NUL-terminated string
        JwtHandle jwt = decode(text, policy.secret);
        ERR_clear_error();
        if (!jwt) return refuse("bad signature or malformed token");
        if (jwt_get_alg(jwt.get()) != alg) return refuse("unexpected algorithm");
        // The claims as JSON, so that types are checked here, not guessed.
        JwtText claims_text(jwt_get_grants_json(jwt.get(), nullptr));
        if (!claims_text) return refuse("no claims");
        claims = parse_json(std::string_view(claims_text.get()));
    } else {
        if (alg == JWT_ALG_INVAL || alg == JWT_ALG_NONE) return refuse("unexpected algorithm");
        if (!keys || keys->keys.empty()) return refuse("tokens signed by keys are not accepted here (no jwt keys)");
        // Verified here with the parsed keys (OpenSSL), not by libjwt: no PEM
        // is parsed per token, and the header that chose the key is the one
        // this parser read (no second JSON parser to disagree with it).
        const size_t second = token.rfind('.');
        const std::string_view signing_input = token.substr(0, second);
        std::optional<std::string> signature = base64url_decode(token.substr(second + 1));
        if (!signature) return refuse("malformed token");
        // The key the kid names; a token without a kid, or a kid no key
        // carries, may be verified by the keys that have none (PEM keys), at
        // most kMaxKeyTries of them: an unauthenticated handshake must not
        // buy many signature checks on the service thread.
        bool any_fits = false, kid_known = false, verified = false;
        int tries = 0;
        for (const PublicKey &k : keys->keys) {
            if (!k.kid.empty() && k.kid != header->kid) continue;
            if (!k.kid.empty()) kid_known = true;
            if (!key_fits(k, alg)) continue;
            any_fits = true;
            if (++tries > kMaxKeyTries) break;
            if ((verified = verify_signature(k, alg, signing_input, *signature))) break;
        }
        if (!verified) {
            // A kid no key carries: the provider may have rotated (a refresh is due), even if a
            // kid-less key of the family was tried in vain.
            const bool unknown = !header->kid.empty() && !kid_known;
            VerifiedToken t = refuse(any_fits ? "bad signature or malformed token"
                                     : unknown ? "no key with the token's kid"
                                     : header->kid.empty() ? "the token has no kid, and every key has one"
                                                            : "no key for the token's algorithm");
            t.unknown_kid = unknown;
            return t;
        }
        const size_t first = token.find('.');
        std::optional<std::string> payload = base64url_decode(token.substr(first + 1, second - first - 1));
        if (!payload) return refuse("malformed token");
        claims = parse_json(*payload);
    }
    if (!claims || !cJSON_IsObject(claims.get())) return refuse("claims are not an object");

    int64_t exp = 0, nbf = 0;
    if (!numeric_date(cJSON_GetObjectItemCaseSensitive(claims.get(), "exp"), exp)) return refuse("no valid exp claim");
    if (now_s >= exp + leeway_s) return refuse("token expired");
    if (const cJSON *v = cJSON_GetObjectItemCaseSensitive(claims.get(), "nbf")) {
        if (!numeric_date(v, nbf)) return refuse("invalid nbf claim");
        if (now_s + leeway_s < nbf) return refuse("token not valid yet");
    }
    VerifiedToken t;
    if (!by_key) {
        const char *user_id = get_string(claims.get(), "userId");
        const char *username = get_string(claims.get(), "username");
        if (!user_id || !*user_id) return refuse("no userId claim");
        if (!username || !*username) return refuse("no username claim");
        t.user_id = user_id;
        t.username = username;
    } else {
        if (!policy.issuer.empty() && policy.issuer != "*") {
            const char *iss = get_string(claims.get(), "iss");
            if (!iss || policy.issuer != iss) return refuse("wrong issuer");
        }
        if (!policy.audience.empty() && policy.audience != "*" &&
            !audience_holds(cJSON_GetObjectItemCaseSensitive(claims.get(), "aud"), policy.audience))
            return refuse("wrong audience");
        const char *user_id = get_string(claims.get(), policy.user_id_claim.c_str());
        const char *username = get_string(claims.get(), policy.username_claim.c_str());
        if (!user_id || !printable_id(user_id))
            return refuse("no " + policy.user_id_claim + " claim of 1 to 128 printable characters");
        // Never someone else's id: anonymous connections are "anon-...", and
        // the user service's users are ObjectIds (24 hex digits) when it
        // issues tokens here too (jwt.secret).
        if (std::string_view(user_id).starts_with("anon-"))
            return refuse("the " + policy.user_id_claim + " claim starts with anon-, which names anonymous connections");
        if (!policy.secret.empty() && object_id_shaped(user_id))
            return refuse("the " + policy.user_id_claim + " claim is 24 hex digits, the form of the user service's "
                          "ids (jwt.secret is set): map another claim or namespace the provider's ids");
        if (!username || !*username || std::string_view(username).size() > 256 || !no_control(username))
            return refuse("no " + policy.username_claim + " claim of 1 to 256 characters");
        t.user_id = user_id;
        t.username = username;
    }
    t.ok = true;
    t.exp = exp;
    return t;
}

VerifiedToken verify_token(std::string_view token, std::string_view secret, jwt_alg_t alg, int64_t now_s,
                           int64_t leeway_s) {
    TokenPolicy policy;
    policy.secret = std::string(secret);
    policy.hmac_alg = alg;
    return verify_token(token, policy, nullptr, now_s, leeway_s);
}

}  // namespace aurora::plugin
