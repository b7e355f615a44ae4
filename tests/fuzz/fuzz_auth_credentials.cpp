// The auth plugin's REST bodies (plugins/auth/credentials.h): the JSON of
// /api/auth/register and /api/auth/login. Invariants: accepted credentials
// follow the rules (username 3-32 of [A-Za-z0-9_.-], password 8-128 bytes
// without NUL) and survive a round trip through JSON; refused ones say why,
// with 413 exactly for bodies over kMaxBodyBytes.
#include <string>

#include "credentials.h"
#include "fuzz_check.h"
#include "json.h"

using namespace aurora::auth;

namespace {

std::string json_quote(std::string_view s) {
    // cJSON's own escaper, so the round trip does not depend on ours.
    cJSON *j = cJSON_CreateString(std::string(s).c_str());
    std::string out = aurora::plugin::to_string(j);
    cJSON_Delete(j);
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    std::string_view body = fuzz_bytes(data, size);
    Credentials c = parse_credentials(body);
    if (!c.ok) {
        FUZZ_CHECK(!c.error.empty());
        FUZZ_CHECK(c.status == (body.size() > kMaxBodyBytes ? 413 : 400));
        return 0;
    }
    FUZZ_CHECK(body.size() <= kMaxBodyBytes);
    FUZZ_CHECK(valid_username(c.username));
    FUZZ_CHECK(c.username.size() >= kUsernameMin && c.username.size() <= kUsernameMax);
    FUZZ_CHECK(c.password.size() >= kPasswordMin && c.password.size() <= kPasswordMax);
    FUZZ_CHECK(c.password.find('\0') == std::string::npos);

    Credentials again = parse_credentials("{\"username\":" + json_quote(c.username) +
                                          ",\"password\":" + json_quote(c.password) + "}");
    FUZZ_CHECK(again.ok && again.username == c.username && again.password == c.password);
    return 0;
}
