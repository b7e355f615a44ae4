#include "token_keys.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>
#include <set>

#include "json.h"

namespace aurora::plugin {

namespace {

template <auto Free>
struct Deleter {
    template <typename T>
    void operator()(T *p) const { Free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX_free>>;
using Bio = std::unique_ptr<BIO, Deleter<BIO_free>>;
using Bignum = std::unique_ptr<BIGNUM, Deleter<BN_free>>;
using ParamBld = std::unique_ptr<OSSL_PARAM_BLD, Deleter<OSSL_PARAM_BLD_free>>;
using Params = std::unique_ptr<OSSL_PARAM, Deleter<OSSL_PARAM_free>>;
using X509Cert = std::unique_ptr<X509, Deleter<X509_free>>;
void ossl_free(void *p) { OPENSSL_free(p); }

constexpr int kMinRsaBits = 2048;
constexpr int kMaxRsaBits = 8192;  // a bigger modulus only makes each handshake's check slower
constexpr size_t kMaxKeys = 64;

}  // namespace

std::optional<std::string> base64url_decode(std::string_view in) {
    while (!in.empty() && in.back() == '=') in.remove_suffix(1);
    std::string out;
    out.reserve(in.size() * 3 / 4);
    uint32_t acc = 0;
    int bits = 0;
    for (char c : in) {
        int v;
        if (c >= 'A' && c <= 'Z') v = c - 'A';
        else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
        else if (c >= '0' && c <= '9') v = c - '0' + 52;
        else if (c == '-') v = 62;
        else if (c == '_') v = 63;
        else return std::nullopt;
        acc = (acc << 6) | static_cast<uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xff));
        }
    }
    if (bits >= 6) return std::nullopt;  // a lone trailing character
    return out;
}

namespace {

std::optional<std::string> b64url(std::string_view in) { return base64url_decode(in); }

// The family of a parsed key, or an error (unsupported type or curve, weak RSA).
std::optional<KeyFamily> family_of(EVP_PKEY *key, std::string &why) {
    switch (EVP_PKEY_get_base_id(key)) {
        case EVP_PKEY_RSA:
            if (EVP_PKEY_get_bits(key) < kMinRsaBits || EVP_PKEY_get_bits(key) > kMaxRsaBits) {
                why = "an RSA key of " + std::to_string(EVP_PKEY_get_bits(key)) + " bits (" +
                      std::to_string(kMinRsaBits) + " to " + std::to_string(kMaxRsaBits) + ")";
                return std::nullopt;
            }
            return KeyFamily::Rsa;
        case EVP_PKEY_EC: {
            char group[64] = {0};
            size_t len = 0;
            if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) != 1) {
                why = "an EC key without a named curve";
                return std::nullopt;
            }
            std::string_view g(group, len);
            if (g == "prime256v1" || g == "P-256") return KeyFamily::P256;
            if (g == "secp384r1" || g == "P-384") return KeyFamily::P384;
            if (g == "secp521r1" || g == "P-521") return KeyFamily::P521;
            why = "an EC key on curve " + std::string(g) + " (P-256, P-384 or P-521)";
            return std::nullopt;
        }
        default: {
            const char *type = EVP_PKEY_get0_type_name(key);
            why = std::string("a key of type ") + (type ? type : "unknown") +
                  " (RSA or EC only; EdDSA: libjwt 1.10 has no Ed25519)";
            return std::nullopt;
        }
    }
}

Pkey from_params(const char *type, OSSL_PARAM_BLD *bld) {
    Params params(OSSL_PARAM_BLD_to_param(bld));
    PkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
    EVP_PKEY *raw = nullptr;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
        EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1)
        return nullptr;
    Pkey key(raw);
    // The point is on its curve; the modulus is sane.
    PkeyCtx check(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
    if (!check || EVP_PKEY_public_check(check.get()) != 1) return nullptr;
    return key;
}

const char *field(const cJSON *jwk, const char *name) { return get_string(jwk, name); }

// One JWK (RSA or EC public key) as a PublicKey; `skip` for encryption keys.
std::optional<PublicKey> from_jwk(const cJSON *jwk, bool &skip, std::string &why) {
    skip = false;
    if (!cJSON_IsObject(jwk)) {
        why = "not an object";
        return std::nullopt;
    }
    const char *kty = field(jwk, "kty");
    if (!kty) {
        why = "no \"kty\"";
        return std::nullopt;
    }
    if (const char *use = field(jwk, "use"); use && std::string_view(use) == "enc") {
        skip = true;
        return std::nullopt;
    }
    if (cJSON_GetObjectItemCaseSensitive(jwk, "d")) {
        why = "a private key (\"d\"): publish only the public part";
        return std::nullopt;
    }
    PublicKey out;
    if (const char *kid = field(jwk, "kid")) out.kid = kid;
    if (const char *alg = field(jwk, "alg")) out.alg = alg;
    const std::string_view type(kty);
    Pkey key;
    ParamBld bld(OSSL_PARAM_BLD_new());
    if (!bld) {
        why = "out of memory";
        return std::nullopt;
    }
    if (type == "RSA") {
        const char *n = field(jwk, "n"), *e = field(jwk, "e");
        std::optional<std::string> nb = n ? b64url(n) : std::nullopt, eb = e ? b64url(e) : std::nullopt;
        if (!nb || !eb || nb->empty() || eb->empty()) {
            why = "an RSA key without base64url \"n\" and \"e\"";
            return std::nullopt;
        }
        Bignum bn_n(BN_bin2bn(reinterpret_cast<const unsigned char *>(nb->data()), static_cast<int>(nb->size()), nullptr));
        Bignum bn_e(BN_bin2bn(reinterpret_cast<const unsigned char *>(eb->data()), static_cast<int>(eb->size()), nullptr));
        if (!bn_n || !bn_e || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
            OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
            why = "out of memory";
            return std::nullopt;
        }
        key = from_params("RSA", bld.get());
    } else if (type == "EC") {
        const char *crv = field(jwk, "crv"), *x = field(jwk, "x"), *y = field(jwk, "y");
        const std::string_view c = crv ? crv : "";
        size_t size = c == "P-256" ? 32 : c == "P-384" ? 48 : c == "P-521" ? 66 : 0;
        const char *group = c == "P-256" ? "prime256v1" : c == "P-384" ? "secp384r1" : "secp521r1";
        if (size == 0) {
            why = "an EC key on curve \"" + std::string(c) + "\" (P-256, P-384 or P-521)";
            return std::nullopt;
        }
        std::optional<std::string> xb = x ? b64url(x) : std::nullopt, yb = y ? b64url(y) : std::nullopt;
        if (!xb || !yb || xb->size() != size || yb->size() != size) {
            why = "an EC key whose \"x\" and \"y\" are not " + std::to_string(size) + " bytes of base64url";
            return std::nullopt;
        }
        std::string point = "\x04" + *xb + *yb;  // uncompressed
        if (OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
            OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) != 1) {
            why = "out of memory";
            return std::nullopt;
        }
        key = from_params("EC", bld.get());
    } else if (type == "oct") {
        why = "a symmetric key (\"oct\"): an HMAC secret belongs in jwt.secret, not in a key set";
        return std::nullopt;
    } else {
        why = "\"kty\": \"" + std::string(type) + "\" (RSA or EC; OKP/EdDSA: libjwt 1.10 has no Ed25519)";
        return std::nullopt;
    }
    if (!key) {
        why = "a key OpenSSL refuses (not a valid " + std::string(type) + " public key)";
        return std::nullopt;
    }
    std::optional<KeyFamily> fam = family_of(key.get(), why);
    if (!fam) return std::nullopt;
    out.family = *fam;
    if (!out.alg.empty()) {
        jwt_alg_t a = jwt_str_alg(out.alg.c_str());
        if (a == JWT_ALG_INVAL || !key_fits(PublicKey{"", "", out.family, nullptr}, a)) {
            why = "\"alg\": \"" + out.alg + "\" does not fit the key";
            return std::nullopt;
        }
    }
    out.key = std::shared_ptr<EVP_PKEY>(key.release(), EVP_PKEY_free);
    return out;
}

std::optional<KeySet> parse_jwks(std::string_view text, std::string &error) {
    Json doc = parse_json(text);
    if (!doc || !cJSON_IsObject(doc.get())) {
        error = "the key set is not a JSON object";
        return std::nullopt;
    }
    const cJSON *keys = cJSON_GetObjectItemCaseSensitive(doc.get(), "keys");
    if (!cJSON_IsArray(keys)) {
        error = "the key set has no \"keys\" array";
        return std::nullopt;
    }
    KeySet set;
    std::set<std::string> kids;
    int index = 0;
    const cJSON *jwk = nullptr;
    cJSON_ArrayForEach(jwk, keys) {
        std::string why;
        bool skip = false;
        std::optional<PublicKey> k = from_jwk(jwk, skip, why);
        const char *kid = cJSON_IsObject(jwk) ? get_string(jwk, "kid") : nullptr;
        const std::string name = "key " + std::to_string(index) + (kid ? " (kid \"" + std::string(kid) + "\")" : "");
        ++index;
        if (skip) {
            ++set.skipped;
            continue;
        }
        if (!k) {
            error = name + ": " + why;
            return std::nullopt;
        }
        if (!k->kid.empty() && !kids.insert(k->kid).second) {
            error = name + ": a second key with this kid";
            return std::nullopt;
        }
        set.keys.push_back(std::move(*k));
        if (set.keys.size() > kMaxKeys) {
            error = "more than " + std::to_string(kMaxKeys) + " keys";
            return std::nullopt;
        }
    }
    if (set.keys.empty()) {
        error = "the key set has no signing key";
        return std::nullopt;
    }
    return set;
}

std::optional<KeySet> parse_pem(std::string_view text, std::string &error) {
    KeySet set;
    Bio bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
    if (!bio) {
        error = "out of memory";
        return std::nullopt;
    }
    int index = 0;
    for (;;) {
        char *name = nullptr, *header = nullptr;
        unsigned char *data = nullptr;
        long len = 0;
        if (PEM_read_bio(bio.get(), &name, &header, &data, &len) != 1) {
            // The end of the text, or a block that is not PEM: only the first is fine.
            const unsigned long e = ERR_peek_last_error();
            ERR_clear_error();
            if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) break;
            error = "PEM block " + std::to_string(index) + ": malformed";
            return std::nullopt;
        }
        std::unique_ptr<char, Deleter<ossl_free>> n(name), h(header);
        std::unique_ptr<unsigned char, Deleter<ossl_free>> d(data);
        const unsigned char *p = data;
        Pkey key;
        const std::string_view kind(name);
        if (kind == "PUBLIC KEY") {
            key.reset(d2i_PUBKEY(nullptr, &p, len));
        } else if (kind == "CERTIFICATE") {
            X509Cert cert(d2i_X509(nullptr, &p, len));
            if (cert) key.reset(X509_get_pubkey(cert.get()));
        } else {
            error = "PEM block " + std::to_string(index) + ": \"" + std::string(kind) +
                    "\" (PUBLIC KEY or CERTIFICATE; never a private key)";
            return std::nullopt;
        }
        if (!key) {
            error = "PEM block " + std::to_string(index) + ": not a valid " + std::string(kind);
            return std::nullopt;
        }
        std::string why;
        std::optional<KeyFamily> fam = family_of(key.get(), why);
        if (!fam) {
            error = "PEM block " + std::to_string(index) + ": " + why;
            return std::nullopt;
        }
        set.keys.push_back(PublicKey{"", "", *fam, std::shared_ptr<EVP_PKEY>(key.release(), EVP_PKEY_free)});
        if (set.keys.size() > kMaxKeys) {
            error = "more than " + std::to_string(kMaxKeys) + " keys";
            return std::nullopt;
        }
        ++index;
    }
    if (set.keys.empty()) {
        error = "no PEM public key or certificate found";
        return std::nullopt;
    }
    return set;
}

}  // namespace

std::optional<KeySet> parse_keys(std::string_view text, std::string &error) {
    size_t start = text.find_first_not_of(" \t\r\n");
    if (start == std::string_view::npos) {
        error = "empty";
        return std::nullopt;
    }
    std::optional<KeySet> keys = text[start] == '{' ? parse_jwks(text, error) : parse_pem(text, error);
    ERR_clear_error();  // what OpenSSL refused is in `error`; leave this thread's queue empty
    return keys;
}

bool verify_signature(const PublicKey &key, jwt_alg_t alg, std::string_view signing_input, std::string_view signature) {
    if (!key.key) return false;
    const EVP_MD *md = nullptr;
    size_t coordinate = 0;  // ES: bytes of r and of s
    switch (alg) {
        case JWT_ALG_RS256: md = EVP_sha256(); break;
        case JWT_ALG_RS384: md = EVP_sha384(); break;
        case JWT_ALG_RS512: md = EVP_sha512(); break;
        case JWT_ALG_ES256: md = EVP_sha256(); coordinate = 32; break;
        case JWT_ALG_ES384: md = EVP_sha384(); coordinate = 48; break;
        case JWT_ALG_ES512: md = EVP_sha512(); coordinate = 66; break;
        default: return false;
    }
    std::string der;
    if (coordinate) {
        // JWS carries r || s (RFC 7518 §3.4); OpenSSL verifies DER.
        if (signature.size() != 2 * coordinate) return false;
        std::unique_ptr<ECDSA_SIG, Deleter<ECDSA_SIG_free>> sig(ECDSA_SIG_new());
        BIGNUM *r = BN_bin2bn(reinterpret_cast<const unsigned char *>(signature.data()), static_cast<int>(coordinate), nullptr);
        BIGNUM *s = BN_bin2bn(reinterpret_cast<const unsigned char *>(signature.data()) + coordinate,
                              static_cast<int>(coordinate), nullptr);
        if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
            BN_free(r);
            BN_free(s);
            return false;
        }
        unsigned char *out = nullptr;
        int n = i2d_ECDSA_SIG(sig.get(), &out);
        if (n <= 0) return false;
        der.assign(reinterpret_cast<char *>(out), static_cast<size_t>(n));
        OPENSSL_free(out);
        signature = der;
    }
    std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX_free>> ctx(EVP_MD_CTX_new());
    const bool ok = ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, key.key.get()) == 1 &&
                    EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char *>(signature.data()),
                                     signature.size(), reinterpret_cast<const unsigned char *>(signing_input.data()),
                                     signing_input.size()) == 1;
    ERR_clear_error();  // a refused signature leaves errors on this thread's queue
    return ok;
}

bool key_fits(const PublicKey &key, jwt_alg_t alg) {
    if (!key.alg.empty() && jwt_str_alg(key.alg.c_str()) != alg) return false;
    switch (key.family) {
        case KeyFamily::Rsa: return alg == JWT_ALG_RS256 || alg == JWT_ALG_RS384 || alg == JWT_ALG_RS512;
        case KeyFamily::P256: return alg == JWT_ALG_ES256;
        case KeyFamily::P384: return alg == JWT_ALG_ES384;
        case KeyFamily::P521: return alg == JWT_ALG_ES512;
    }
    return false;
}

}  // namespace aurora::plugin
