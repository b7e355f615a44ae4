// An identity provider's key set (plugins/common/token_keys.h): a JWKS
// document or PEM, as read from jwt.keys_file or fetched from jwt.jwks_url
// (a hostile or broken provider, a proxy's error page). Invariants: a
// refusal says why; an accepted set has 1 to 64 keys, each a parsed public key
// that fits at least one algorithm of its family, kids unique.
#include <set>
#include <string>

#include "fuzz_check.h"
#include "token_keys.h"

using namespace aurora::plugin;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    std::string err;
    std::optional<KeySet> set = parse_keys(fuzz_bytes(data, size), err);
    if (!set) {
        FUZZ_CHECK(!err.empty());
        return 0;
    }
    FUZZ_CHECK(!set->keys.empty() && set->keys.size() <= 64);
    std::set<std::string> kids;
    for (const PublicKey &k : set->keys) {
        FUZZ_CHECK(k.key != nullptr);
        bool fits = false;  // some algorithm verifies with it
        for (jwt_alg_t a : {JWT_ALG_RS256, JWT_ALG_RS384, JWT_ALG_RS512, JWT_ALG_ES256, JWT_ALG_ES384, JWT_ALG_ES512})
            fits = fits || key_fits(k, a);
        FUZZ_CHECK(fits);  // a JWK's "alg" must fit its key, and key_fits holds it to that
        if (!k.kid.empty()) FUZZ_CHECK(kids.insert(k.kid).second);
    }
    return 0;
}
