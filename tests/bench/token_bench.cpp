// token_bench: what verifying one bearer token costs on the thread that runs
// the handshake (plugins/common/token_verifier.h), per kind of token: the
// user service's HS256, an identity provider's RS256 (RSA 2048) and ES256
// (P-256) found by kid, and the worst case the verifier allows, a kid-less
// RS256 token that only the last of kMaxKeyTries kid-less keys verifies.
// The last row is the same RS256 token through libjwt's jwt_decode with the
// PEM (what the verifier did before it kept parsed keys): the baseline, in
// the same run. Keys are generated here. Not a test: it prints numbers.
//
//   build/tests/bench/token_bench [--tokens 20000]
#include <openssl/evp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "jwt_handle.h"
#include "pem_text.h"
#include "token_keys.h"
#include "token_verifier.h"

using namespace aurora::plugin;
using aurora::test::pem_text;

namespace {


std::string sign(jwt_alg_t alg, const std::string &key, const std::string &kid, int64_t exp) {
    jwt_t *raw = nullptr;
    jwt_new(&raw);
    JwtHandle jwt(raw);
    std::string claims = R"({"sub":"auth0|bench","preferred_username":"bench","userId":"65f0c0ffee0123456789abcd",)"
                         R"("username":"bench","iss":"https://idp.example/","aud":"aurora","exp":)" +
                         std::to_string(exp) + "}";
    jwt_add_grants_json(jwt.get(), claims.c_str());
    if (!kid.empty()) jwt_add_header(jwt.get(), "kid", kid.c_str());
    jwt_set_alg(jwt.get(), alg, reinterpret_cast<const unsigned char *>(key.data()), static_cast<int>(key.size()));
    JwtText text(jwt_encode_str(jwt.get()));
    return text.get();
}

KeySet keys_of(const std::string &text, const char *kid) {
    std::string err;
    KeySet set = *parse_keys(text, err);
    for (PublicKey &k : set.keys) k.kid = kid;
    return set;
}

}  // namespace

int main(int argc, char **argv) {
    int tokens = 20000;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--tokens") && i + 1 < argc) tokens = std::atoi(argv[++i]);
        else {
            std::fprintf(stderr, "usage: %s [--tokens N]\n", argv[0]);
            return 2;
        }
    }
    std::printf("command: build/tests/bench/token_bench --tokens %d\n", tokens);
    const int64_t now = static_cast<int64_t>(std::time(nullptr));
    TokenPolicy policy;
    policy.secret = "a-shared-secret-of-the-user-service-0123456789";
    policy.issuer = "https://idp.example/";
    policy.audience = "aurora";

    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048));
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    KeySet set = keys_of(pem_text(rsa, false), "r1");
    KeySet ec_set = keys_of(pem_text(ec, false), "e1");
    set.keys.push_back(ec_set.keys[0]);
    // Worst case: kMaxKeyTries kid-less RSA keys, the signer last.
    KeySet kidless;
    for (int i = 0; i + 1 < kMaxKeyTries; ++i) {
        EVP_PKEY *other = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048));
        kidless.keys.push_back(keys_of(pem_text(other, false), "").keys[0]);
        EVP_PKEY_free(other);
    }
    kidless.keys.push_back(keys_of(pem_text(rsa, false), "").keys[0]);

    struct Case {
        const char *name;
        std::string token;
        const KeySet *keys;
    } cases[] = {
        {"HS256 (user service)", sign(JWT_ALG_HS256, policy.secret, "", now + 3600), &set},
        {"RS256 by kid (RSA 2048)", sign(JWT_ALG_RS256, pem_text(rsa, true), "r1", now + 3600), &set},
        {"ES256 by kid (P-256)", sign(JWT_ALG_ES256, pem_text(ec, true), "e1", now + 3600), &set},
        {"RS256, no kid, 4th of 4 kid-less keys", sign(JWT_ALG_RS256, pem_text(rsa, true), "", now + 3600), &kidless},
    };
    std::printf("%-40s %12s %14s\n", "token", "us/verify", "verifies/s");
    for (const Case &c : cases) {
        if (!verify_token(c.token, policy, c.keys, now, 30).ok) {
            std::fprintf(stderr, "%s: not accepted: %s\n", c.name, verify_token(c.token, policy, c.keys, now, 30).error.c_str());
            return 1;
        }
        auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < tokens; ++i) (void)verify_token(c.token, policy, c.keys, now, 30);
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::printf("%-40s %12.1f %14.0f\n", c.name, s / tokens * 1e6, tokens / s);
    }
    {
        const std::string token = cases[1].token, key = pem_text(rsa, false);
        auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < tokens; ++i) {
            jwt_t *raw = nullptr;
            if (jwt_decode(&raw, token.c_str(), reinterpret_cast<const unsigned char *>(key.data()),
                           static_cast<int>(key.size())) != 0) {
                std::fprintf(stderr, "jwt_decode refused the RS256 token\n");
                return 1;
            }
            jwt_free(raw);
        }
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::printf("%-40s %12.1f %14.0f\n", "RS256 via libjwt (PEM per token; before)", s / tokens * 1e6, tokens / s);
    }
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    return 0;
}
