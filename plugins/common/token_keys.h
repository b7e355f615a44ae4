// The public keys that sign an identity provider's bearer tokens (RS256,
// RS384, RS512, ES256, ES384, ES512), read from a JWKS document (RFC 7517:
// {"keys": [...]}) or from PEM (public keys or certificates, one or more).
// Each key is parsed once, here, and verified with by verify_signature.
// Pure: no I/O; the caller reads the file or fetches the URL.
#pragma once

#include <jwt.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct evp_pkey_st;  // OpenSSL's EVP_PKEY

namespace aurora::plugin {

enum class KeyFamily { Rsa, P256, P384, P521 };

struct PublicKey {
    std::string kid;  // the JWK's "kid"; empty for PEM (matches a token of its family with any kid)
    std::string alg;  // the JWK's "alg" if it names one: the only algorithm the key is used with
    KeyFamily family = KeyFamily::Rsa;
    // The parsed key, shared read-only by every thread that verifies with
    // it: parsing PEM per token cost ~10 times the signature check itself.
    std::shared_ptr<evp_pkey_st> key;
};

struct KeySet {
    std::vector<PublicKey> keys;
    int skipped = 0;  // JWKs with "use": "enc" (encryption keys, not for signatures)
};

// A JWKS document when `text` starts with '{', PEM otherwise. nullopt with
// `error` naming the key (its index and kid) and what is wrong: malformed
// JSON or base64url, an unknown "kty" or "crv" (EdDSA/OKP: libjwt 1.10 has no
// Ed25519), a symmetric key ("oct": shared secrets belong in jwt.secret), an
// RSA key under 2048 bits, a point not on its curve, an "alg" that does not
// fit the key, two keys with one kid, or no key at all.
std::optional<KeySet> parse_keys(std::string_view text, std::string &error);

// RFC 7515 §2: base64url without padding (padding tolerated); nullopt if
// `in` has other characters or a dangling one.
std::optional<std::string> base64url_decode(std::string_view in);

// Whether `signature` (as a JWS carries it: PKCS#1 v1.5 for RS*, r || s of
// the curve's size for ES*) signs `signing_input` ("<header>.<payload>")
// under `key` with `alg`. The caller checked key_fits(key, alg). Any thread.
bool verify_signature(const PublicKey &key, jwt_alg_t alg, std::string_view signing_input, std::string_view signature);

// The algorithms a key of `family` verifies (RS256/384/512 for RSA, one ES
// per curve), and whether `alg` is one of them for `key` (its JWK "alg", if
// any, must also be `alg`).
bool key_fits(const PublicKey &key, jwt_alg_t alg);

}  // namespace aurora::plugin
