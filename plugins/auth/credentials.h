// Parses and checks the body of /api/auth/register and /api/auth/login:
// {"username": string, "password": string}. Anything that is not exactly two
// strings within the rules is refused here, so a non-string (such as the
// object {"$ne": null}) never reaches a database query. Pure; any thread.
#pragma once

#include <string>
#include <string_view>

namespace aurora::auth {

struct Credentials {
    bool ok = false;
    std::string error;  // the 400 message when !ok
    std::string username;
    std::string password;
};

constexpr size_t kUsernameMin = 3, kUsernameMax = 32;
constexpr size_t kPasswordMin = 8, kPasswordMax = 128;

Credentials parse_credentials(std::string_view body);

// 3-32 characters of [A-Za-z0-9_.-].
bool valid_username(std::string_view name);

}  // namespace aurora::auth
