// CORS for the HTTP routes: an allow-list of exact origins (or `*` in dev
// mode). Pure; any thread.
#pragma once

#include <string>
#include <string_view>

#include "auth_config.h"

namespace aurora::auth {

bool origin_allowed(const AuthSettings &cfg, std::string_view origin);

// "Name: value\r\n" lines for a response to a request from `origin`: the
// Access-Control-Allow-Origin pair when allowed (always with Vary: Origin).
std::string cors_headers(const AuthSettings &cfg, std::string_view origin);

// The extra lines of a successful preflight answer.
std::string preflight_headers(const AuthSettings &cfg, std::string_view origin);

}  // namespace aurora::auth
