// Tokens from an identity provider (plugins/common/token_keys.h,
// token_verifier.h): key sets parsed from JWKS and PEM, every refusal named,
// and tokens signed here with keys generated here (RSA 2048, P-256, P-384)
// accepted, tampered, misdirected, expired, rotated out or alg-confused ones
// refused.
#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include <memory>
#include <string>

#include "json.h"
#include "jwt_handle.h"
#include "pem_text.h"
#include "token_keys.h"
#include "token_verifier.h"

using namespace aurora::plugin;
using aurora::test::pem_text;

namespace {

struct PkeyFree {
    void operator()(EVP_PKEY *k) const { EVP_PKEY_free(k); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

const int64_t kNow = 1'800'000'000;

std::string b64url(const std::string &bin) {
    static const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    uint32_t acc = 0;
    int bits = 0;
    for (unsigned char c : bin) {
        acc = (acc << 8) | c;
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out.push_back(a[(acc >> bits) & 63]);
        }
    }
    if (bits > 0) out.push_back(a[(acc << (6 - bits)) & 63]);
    return out;
}


std::string bn_param(EVP_PKEY *k, const char *name) {
    BIGNUM *bn = nullptr;
    EVP_PKEY_get_bn_param(k, name, &bn);
    std::string out(static_cast<size_t>(BN_num_bytes(bn)), '\0');
    BN_bn2bin(bn, reinterpret_cast<unsigned char *>(out.data()));
    BN_free(bn);
    return out;
}

struct TestKey {
    Pkey key;
    std::string kid;
    std::string jwk;  // the public JWK
    jwt_alg_t alg;
};

TestKey rsa(const std::string &kid, unsigned bits = 2048) {
    TestKey t{Pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits))), kid, "", JWT_ALG_RS256};
    t.jwk = R"({"kty":"RSA","use":"sig","kid":")" + kid + R"(","n":")" + b64url(bn_param(t.key.get(), OSSL_PKEY_PARAM_RSA_N)) +
            R"(","e":")" + b64url(bn_param(t.key.get(), OSSL_PKEY_PARAM_RSA_E)) + R"("})";
    return t;
}

TestKey ec(const std::string &kid, const char *curve, const char *crv, size_t size, jwt_alg_t alg) {
    TestKey t{Pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve)), kid, "", alg};
    unsigned char point[200];
    size_t len = 0;
    EVP_PKEY_get_octet_string_param(t.key.get(), OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point, &len);
    std::string p(reinterpret_cast<char *>(point) + 1, len - 1);  // after 0x04
    t.jwk = R"({"kty":"EC","kid":")" + kid + R"(","crv":")" + crv + R"(","x":")" + b64url(p.substr(0, size)) +
            R"(","y":")" + b64url(p.substr(size)) + R"("})";
    return t;
}

std::string jwks(std::initializer_list<const TestKey *> keys) {
    std::string out = R"({"keys":[)";
    for (const TestKey *k : keys) out += (out.back() == '[' ? "" : ",") + k->jwk;
    return out + "]}";
}

// A token signed with `key` (its private PEM), with `kid` in the header.
std::string sign(const TestKey &k, const std::string &claims, const std::string &kid) {
    jwt_t *raw = nullptr;
    jwt_new(&raw);
    JwtHandle jwt(raw);
    jwt_add_grants_json(jwt.get(), claims.c_str());
    if (!kid.empty()) jwt_add_header(jwt.get(), "kid", kid.c_str());
    std::string pem = pem_text(k.key.get(), true);
    jwt_set_alg(jwt.get(), k.alg, reinterpret_cast<const unsigned char *>(pem.data()), static_cast<int>(pem.size()));
    JwtText text(jwt_encode_str(jwt.get()));
    return text ? text.get() : "";
}

std::string claims(const std::string &extra = "") {
    return R"({"sub":"auth0|u-42","preferred_username":"ada","iss":"https://idp.example/","aud":["aurora","other"],)"
           R"("exp":)" + std::to_string(kNow + 600) + extra + "}";
}

TokenPolicy idp() {
    TokenPolicy p;
    p.secret = "a-shared-secret-of-the-user-service-0123456789";
    p.issuer = "https://idp.example/";
    p.audience = "aurora";
    return p;
}

KeySet keys_of(const std::string &text) {
    std::string err;
    std::optional<KeySet> k = parse_keys(text, err);
    EXPECT_TRUE(k) << err;
    return k ? *k : KeySet{};
}

std::string refusal(const std::string &text) {
    std::string err;
    EXPECT_FALSE(parse_keys(text, err)) << text.substr(0, 200);
    return err;
}

}  // namespace

TEST(TokenKeys, JwksAndPemOfEveryFamily) {
    TestKey r = rsa("r1"), p256 = ec("e1", "P-256", "P-256", 32, JWT_ALG_ES256), p384 = ec("e2", "P-384", "P-384", 48, JWT_ALG_ES384);
    KeySet set = keys_of(jwks({&r, &p256, &p384}));
    ASSERT_EQ(set.keys.size(), 3u);
    EXPECT_EQ(set.keys[0].family, KeyFamily::Rsa);
    EXPECT_EQ(set.keys[1].family, KeyFamily::P256);
    EXPECT_EQ(set.keys[2].family, KeyFamily::P384);
    EXPECT_EQ(set.keys[1].kid, "e1");
    // PEM: two public keys in one file, no kids.
    KeySet pem = keys_of(pem_text(r.key.get(), false) + pem_text(p256.key.get(), false));
    ASSERT_EQ(pem.keys.size(), 2u);
    EXPECT_TRUE(pem.keys[0].kid.empty());
    // Encryption keys are skipped, not refused.
    std::string enc = r.jwk;
    enc.replace(enc.find("\"use\":\"sig\""), 11, "\"use\":\"enc\"");
    KeySet with_enc = keys_of(R"({"keys":[)" + enc + "," + p256.jwk + "]}");
    EXPECT_EQ(with_enc.keys.size(), 1u);
    EXPECT_EQ(with_enc.skipped, 1);
}

TEST(TokenKeys, EveryBadKeySetIsRefusedNamingWhy) {
    TestKey r = rsa("r1"), weak = rsa("w", 1024), p256 = ec("e1", "P-256", "P-256", 32, JWT_ALG_ES256);
    EXPECT_NE(refusal(R"({"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]})")
                  .find("\"kty\": \"OKP\""), std::string::npos);
    EXPECT_NE(refusal(R"({"keys":[{"kty":"oct","k":"c2VjcmV0"}]})").find("symmetric"), std::string::npos);
    EXPECT_NE(refusal(R"({"keys":[{"kty":"WAT"}]})").find("key 0"), std::string::npos);
    EXPECT_NE(refusal(jwks({&weak})).find("1024 bits"), std::string::npos);
    EXPECT_NE(refusal(jwks({&r, &r})).find("a second key with this kid"), std::string::npos);
    std::string off_curve = p256.jwk;
    off_curve.replace(off_curve.find("\"y\":\"") + 5, 4, "AAAA");
    EXPECT_NE(refusal(R"({"keys":[)" + off_curve + "]}").find("OpenSSL refuses"), std::string::npos);
    std::string wrong_alg = r.jwk;
    wrong_alg.insert(1, R"("alg":"ES256",)");
    EXPECT_NE(refusal(R"({"keys":[)" + wrong_alg + "]}").find("does not fit"), std::string::npos);
    std::string priv = r.jwk;
    priv.insert(1, R"("d":"AQAB",)");
    EXPECT_NE(refusal(R"({"keys":[)" + priv + "]}").find("private key"), std::string::npos);
    EXPECT_NE(refusal(R"({"keys":[{"kty":"RSA","n":"%%%","e":"AQAB"}]})").find("base64url"), std::string::npos);
    EXPECT_NE(refusal(R"({"keys":[]})").find("no signing key"), std::string::npos);
    EXPECT_NE(refusal(R"({"keys":{}})").find("\"keys\" array"), std::string::npos);
    EXPECT_NE(refusal("{not json").find("not a JSON object"), std::string::npos);
    EXPECT_NE(refusal("").find("empty"), std::string::npos);
    EXPECT_NE(refusal("just text").find("no PEM"), std::string::npos);
    EXPECT_NE(refusal(pem_text(r.key.get(), true)).find("never a private key"), std::string::npos);
}

TEST(TokenVerify, KeySignedTokensOfEachFamily) {
    TestKey r = rsa("r1"), p256 = ec("e1", "P-256", "P-256", 32, JWT_ALG_ES256), p384 = ec("e2", "P-384", "P-384", 48, JWT_ALG_ES384);
    KeySet set = keys_of(jwks({&r, &p256, &p384}));
    for (const TestKey *k : {&r, &p256, &p384}) {
        VerifiedToken v = verify_token(sign(*k, claims(), k->kid), idp(), &set, kNow, 30);
        EXPECT_TRUE(v.ok) << k->kid << ": " << v.error;
        EXPECT_EQ(v.user_id, "auth0|u-42");
        EXPECT_EQ(v.username, "ada");
    }
    // PEM keys (no kid) verify tokens with or without one.
    KeySet pem = keys_of(pem_text(r.key.get(), false));
    EXPECT_TRUE(verify_token(sign(r, claims(), ""), idp(), &pem, kNow, 30).ok);
    EXPECT_TRUE(verify_token(sign(r, claims(), "any"), idp(), &pem, kNow, 30).ok);
    // Claim names are settings.
    TokenPolicy mapped = idp();
    mapped.user_id_claim = "uid";
    mapped.username_claim = "name";
    VerifiedToken v = verify_token(sign(r, claims(R"(,"uid":"77","name":"Ada L.")"), "r1"), mapped, &set, kNow, 30);
    EXPECT_TRUE(v.ok) << v.error;
    EXPECT_EQ(v.user_id, "77");
    EXPECT_EQ(v.username, "Ada L.");
}

TEST(TokenVerify, BadKeySignedTokensAreRefusedNamingWhy) {
    TestKey r = rsa("r1"), other = rsa("r1"), p256 = ec("e1", "P-256", "P-256", 32, JWT_ALG_ES256);
    KeySet set = keys_of(jwks({&r, &p256}));
    auto why = [&](const std::string &token, const TokenPolicy &p = idp()) {
        VerifiedToken v = verify_token(token, p, &set, kNow, 30);
        EXPECT_FALSE(v.ok) << token;
        return v.error;
    };
    std::string good = sign(r, claims(), "r1");
    ASSERT_TRUE(verify_token(good, idp(), &set, kNow, 30).ok);
    // Tampered: one claim changed, the signature kept.
    std::string tampered = good;
    size_t dot = tampered.find('.');
    tampered[dot + 5] = tampered[dot + 5] == 'A' ? 'B' : 'A';
    EXPECT_EQ(why(tampered), "bad signature or malformed token");
    // Signed by another key under the same kid.
    EXPECT_EQ(why(sign(other, claims(), "r1")), "bad signature or malformed token");
    // A kid no key has (a key rotated out): refused, and flagged for a refresh.
    VerifiedToken rotated = verify_token(sign(r, claims(), "gone"), idp(), &set, kNow, 30);
    EXPECT_FALSE(rotated.ok);
    EXPECT_TRUE(rotated.unknown_kid);
    EXPECT_EQ(rotated.error, "no key with the token's kid");
    // The RSA key's kid on an ES256 token: no key of that family.
    EXPECT_EQ(why(sign(p256, claims(), "r1")), "no key for the token's algorithm");
    EXPECT_EQ(why(sign(r, R"({"sub":"u","preferred_username":"a","iss":"https://evil/","aud":"aurora","exp":)" +
                           std::to_string(kNow + 600) + "}", "r1")), "wrong issuer");
    EXPECT_EQ(why(sign(r, R"({"sub":"u","preferred_username":"a","iss":"https://idp.example/","aud":"someone-else","exp":)" +
                           std::to_string(kNow + 600) + "}", "r1")), "wrong audience");
    EXPECT_EQ(why(sign(r, R"({"sub":"u","preferred_username":"a","iss":"https://idp.example/","exp":)" +
                           std::to_string(kNow + 600) + "}", "r1")), "wrong audience");
    EXPECT_EQ(why(sign(r, R"({"sub":"u","preferred_username":"a","iss":"https://idp.example/","aud":"aurora","exp":)" +
                           std::to_string(kNow - 60) + "}", "r1")), "token expired");
    EXPECT_NE(why(sign(r, R"({"sub":"has space","preferred_username":"a","iss":"https://idp.example/","aud":"aurora","exp":)" +
                           std::to_string(kNow + 60) + "}", "r1")).find("no sub claim"), std::string::npos);
    EXPECT_NE(why(sign(r, R"({"sub":")" + std::string(200, 'x') + R"(","preferred_username":"a","iss":"https://idp.example/","aud":"aurora","exp":)" +
                           std::to_string(kNow + 60) + "}", "r1")).find("no sub claim"), std::string::npos);
    EXPECT_NE(why(sign(r, R"({"sub":"u","iss":"https://idp.example/","aud":"aurora","exp":)" +
                           std::to_string(kNow + 60) + "}", "r1")).find("no preferred_username claim"), std::string::npos);
    // No keys configured: key-signed tokens are refused as such.
    EXPECT_EQ(verify_token(good, idp(), nullptr, kNow, 30).error,
              "tokens signed by keys are not accepted here (no jwt keys)");
}

TEST(TokenVerify, AnRsaPublicKeyIsNeverAnHmacSecret) {
    // Algorithm confusion: an HS256 token whose "secret" is the public PEM
    // (which an attacker can download) must not pass, whatever the keys.
    TestKey r = rsa("r1");
    KeySet set = keys_of(jwks({&r}));
    const std::string pub = pem_text(r.key.get(), false);
    jwt_t *raw = nullptr;
    jwt_new(&raw);
    JwtHandle jwt(raw);
    jwt_add_grants_json(jwt.get(), (R"({"userId":"65f0c0ffee0123456789abcd","username":"mallory","sub":"x","exp":)" +
                                    std::to_string(kNow + 600) + "}").c_str());
    jwt_add_header(jwt.get(), "kid", "r1");
    jwt_set_alg(jwt.get(), JWT_ALG_HS256, reinterpret_cast<const unsigned char *>(pub.data()), static_cast<int>(pub.size()));
    JwtText forged(jwt_encode_str(jwt.get()));
    ASSERT_TRUE(forged);
    VerifiedToken v = verify_token(forged.get(), idp(), &set, kNow, 30);
    EXPECT_FALSE(v.ok);
    EXPECT_EQ(v.error, "bad signature or malformed token");  // checked with jwt.secret only
    TokenPolicy no_secret = idp();
    no_secret.secret.clear();
    EXPECT_EQ(verify_token(forged.get(), no_secret, &set, kNow, 30).error,
              "HMAC tokens are not accepted here (no jwt.secret)");
    // And the user service's own HS256 tokens still pass beside the keys.
    jwt_t *raw2 = nullptr;
    jwt_new(&raw2);
    JwtHandle hs(raw2);
    jwt_add_grants_json(hs.get(), (R"({"userId":"65f0c0ffee0123456789abcd","username":"ann","exp":)" +
                                   std::to_string(kNow + 600) + "}").c_str());
    const std::string secret = idp().secret;
    jwt_set_alg(hs.get(), JWT_ALG_HS256, reinterpret_cast<const unsigned char *>(secret.data()), static_cast<int>(secret.size()));
    JwtText hs_text(jwt_encode_str(hs.get()));
    VerifiedToken ok = verify_token(hs_text.get(), idp(), &set, kNow, 30);
    EXPECT_TRUE(ok.ok) << ok.error;
    EXPECT_EQ(ok.username, "ann");
}

TEST(TokenVerify, KidlessTokensAndKidlessKeys) {
    TestKey a = rsa("a"), b = rsa("b"), pem_key = rsa("");
    KeySet with_kids = keys_of(jwks({&a, &b}));
    VerifiedToken v = verify_token(sign(a, claims(), ""), idp(), &with_kids, kNow, 30);
    EXPECT_EQ(v.error, "the token has no kid, and every key has one");
    EXPECT_FALSE(v.unknown_kid);
    // A set that mixes a kid-less PEM key with kid'd ones: a new kid is
    // still reported as unknown (a refresh is due) though the PEM key was tried.
    KeySet mixed = with_kids;
    mixed.keys.push_back(keys_of(pem_text(pem_key.key.get(), false)).keys[0]);
    VerifiedToken rotated = verify_token(sign(rsa("new"), claims(), "new"), idp(), &mixed, kNow, 30);
    EXPECT_FALSE(rotated.ok);
    EXPECT_TRUE(rotated.unknown_kid);
    EXPECT_TRUE(verify_token(sign(pem_key, claims(), "whatever"), idp(), &mixed, kNow, 30).ok);
    // At most kMaxKeyTries kid-less keys are tried for one token.
    KeySet many;
    for (int i = 0; i < kMaxKeyTries; ++i) many.keys.push_back(keys_of(pem_text(rsa("").key.get(), false)).keys[0]);
    many.keys.push_back(keys_of(pem_text(pem_key.key.get(), false)).keys[0]);  // the signer comes last
    EXPECT_EQ(verify_token(sign(pem_key, claims(), ""), idp(), &many, kNow, 30).error,
              "bad signature or malformed token");
}

TEST(TokenVerify, ProviderIdsNeverNameAnotherUser) {
    TestKey r = rsa("r1");
    KeySet set = keys_of(jwks({&r}));
    auto with_sub = [&](const std::string &sub) {
        return sign(r, R"({"sub":")" + sub + R"(","preferred_username":"x","iss":"https://idp.example/","aud":"aurora","exp":)" +
                           std::to_string(kNow + 600) + "}", "r1");
    };
    EXPECT_NE(verify_token(with_sub("anon-1-2"), idp(), &set, kNow, 30).error.find("anon-"), std::string::npos);
    // 24 hex digits is a user service id: refused while jwt.secret is set.
    EXPECT_NE(verify_token(with_sub("65F0C0FFEE0123456789ABCD"), idp(), &set, kNow, 30).error.find("24 hex digits"),
              std::string::npos);
    TokenPolicy provider_only = idp();
    provider_only.secret.clear();
    EXPECT_TRUE(verify_token(with_sub("65f0c0ffee0123456789abcd"), provider_only, &set, kNow, 30).ok);
    // "*" accepts any issuer or audience, explicitly.
    TokenPolicy any = idp();
    any.issuer = "*";
    any.audience = "*";
    EXPECT_TRUE(verify_token(sign(r, R"({"sub":"u","preferred_username":"x","iss":"https://other/","exp":)" +
                                         std::to_string(kNow + 600) + "}", "r1"), any, &set, kNow, 30).ok);
}

TEST(TokenVerify, HeadersThatAreNotUnderstoodAreRefused) {
    TestKey r = rsa("r1");
    KeySet set = keys_of(jwks({&r}));
    std::string good = sign(r, claims(), "r1");
    std::string body = good.substr(good.find('.'));
    auto with_header = [&](const std::string &h) { return b64url(h) + body; };
    EXPECT_EQ(verify_token(with_header(R"({"alg":"RS256","kid":"r1","crit":["exp"]})"), idp(), &set, kNow, 30).error,
              "unsupported critical header");
    EXPECT_EQ(verify_token(with_header(R"({"alg":"none"})"), idp(), &set, kNow, 30).error, "unexpected algorithm");
    EXPECT_EQ(verify_token(with_header(R"({"alg":"EdDSA"})"), idp(), &set, kNow, 30).error, "unexpected algorithm");
    EXPECT_EQ(verify_token(with_header(R"({"alg":"RS256","kid":7})"), idp(), &set, kNow, 30).error,
              "malformed token header");
    EXPECT_EQ(verify_token(with_header("[]"), idp(), &set, kNow, 30).error, "malformed token header");
    // "alg" twice: cJSON reads the first, libjwt's jansson the last. The RS256
    // path is taken, and the algorithm libjwt verified with must be RS256.
    EXPECT_FALSE(verify_token(with_header(R"({"alg":"RS256","alg":"HS256","kid":"r1"})"), idp(), &set, kNow, 30).ok);
    EXPECT_FALSE(verify_token(with_header(R"({"alg":"HS256","alg":"RS256","kid":"r1"})"), idp(), &set, kNow, 30).ok);
}
