// Bearer-token verification (plugins/common/token_verifier.h) with the
// project's key handling: a fixed 32-byte HMAC secret, HS256 pinned, a fixed
// clock. The first byte picks what the rest is:
//   0  a token string, verified as it is (mutations of the seed corpus's
//      valid tokens, which are signed with the secret below);
//   1  the claims JSON of a token that the harness signs with the secret
//      (next byte: the header's alg, HS256/HS384/HS512), so that mutated
//      claims get past the signature and reach the claim checks;
//   2  header JSON, a newline, claims JSON, signed with HS256: libjwt's
//      header handling with a valid signature.
// Each token is also verified with the identity-provider policy beside the
// secret: an RSA key set (one key, kid "k1", generated once), issuer and
// audience required: the header is read and the algorithm checked against
// the key's family before any signature (an HS token is never verified with
// the RSA key).
// Invariants: an accepted token has a non-empty userId and username and an
// exp still in the future (with the leeway); a refused one says why.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>

#include <openssl/core_names.h>
#include <openssl/pem.h>

#include "fuzz_check.h"
#include "token_verifier.h"

using aurora::plugin::KeySet;
using aurora::plugin::TokenPolicy;
using aurora::plugin::verify_token;
using aurora::plugin::VerifiedToken;

namespace {

// tests/fuzz/corpus/fuzz_jwt_verify/ holds tokens signed with this (made by
// tests/fuzz/make_corpus.py).
constexpr std::string_view kSecret = "aurora-fuzz-secret-32-bytes-long";
static_assert(kSecret.size() == 32);
constexpr int64_t kNow = 1700000000;
constexpr int64_t kLeeway = 30;

std::string base64url(std::string_view in) {
    static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        uint32_t v = uint32_t(uint8_t(in[i])) << 16 | uint32_t(uint8_t(in[i + 1])) << 8 | uint8_t(in[i + 2]);
        for (int k = 3; k >= 0; --k) out += kAlphabet[(v >> (6 * k)) & 63];
    }
    if (i + 1 == in.size()) {
        uint32_t v = uint32_t(uint8_t(in[i])) << 16;
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
    } else if (i + 2 == in.size()) {
        uint32_t v = uint32_t(uint8_t(in[i])) << 16 | uint32_t(uint8_t(in[i + 1])) << 8;
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += kAlphabet[(v >> 6) & 63];
    }
    return out;
}

std::string sign(std::string_view header, std::string_view claims, const EVP_MD *md) {
    std::string input = base64url(header) + "." + base64url(claims);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(md, kSecret.data(), static_cast<int>(kSecret.size()), reinterpret_cast<const unsigned char *>(input.data()),
         input.size(), mac, &len);
    return input + "." + base64url(std::string_view(reinterpret_cast<const char *>(mac), len));
}

// One RSA public key as a key set (PEM, then kid "k1").
const KeySet &rsa_keys() {
    static const KeySet keys = [] {
        EVP_PKEY *k = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048));
        BIO *bio = BIO_new(BIO_s_mem());
        PEM_write_bio_PUBKEY(bio, k);
        char *data = nullptr;
        long n = BIO_get_mem_data(bio, &data);
        std::string err;
        std::optional<KeySet> set = aurora::plugin::parse_keys(std::string_view(data, static_cast<size_t>(n)), err);
        BIO_free(bio);
        EVP_PKEY_free(k);
        FUZZ_CHECK(set && set->keys.size() == 1);
        set->keys[0].kid = "k1";
        return *set;
    }();
    return keys;
}

void check(const VerifiedToken &t) {
    if (!t.ok) {
        FUZZ_CHECK(!t.error.empty());
        return;
    }
    FUZZ_CHECK(!t.user_id.empty() && !t.username.empty());
    FUZZ_CHECK(kNow < t.exp + kLeeway);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    std::string_view rest = fuzz_bytes(data + 1, size - 1);
    std::string token;
    switch (data[0] % 3) {
    case 0:
        token = rest;
        break;
    case 1: {
        static const char *const kAlgs[] = {"HS256", "HS384", "HS512"};
        static const EVP_MD *(*const kMds[])() = {EVP_sha256, EVP_sha384, EVP_sha512};
        const int a = data[1] % 3;
        rest.remove_prefix(1);
        token = sign(std::string("{\"alg\":\"") + kAlgs[a] + "\",\"typ\":\"JWT\"}", rest, kMds[a]());
        break;
    }
    default: {
        size_t nl = rest.find('\n');
        if (nl == std::string_view::npos) return 0;
        token = sign(rest.substr(0, nl), rest.substr(nl + 1), EVP_sha256());
        break;
    }
    }
    check(verify_token(token, kSecret, JWT_ALG_HS256, kNow, kLeeway));
    TokenPolicy idp;
    idp.secret = std::string(kSecret);
    idp.issuer = "https://idp.example/";
    idp.audience = "aurora";
    const VerifiedToken both = verify_token(token, idp, &rsa_keys(), kNow, kLeeway);
    check(both);
    // Nothing the harness makes is RSA-signed: only HS256 with the secret can pass.
    if (both.ok) FUZZ_CHECK(verify_token(token, kSecret, JWT_ALG_HS256, kNow, kLeeway).ok);
    return 0;
}
