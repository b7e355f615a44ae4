#include "cors.h"

namespace aurora::auth {

bool origin_allowed(const AuthSettings &cfg, std::string_view origin) {
    if (origin.empty()) return false;
    if (cfg.cors_any) return true;
    for (const std::string &o : cfg.cors_origins)
        if (o == origin) return true;
    return false;
}

std::string cors_headers(const AuthSettings &cfg, std::string_view origin) {
    std::string out = "Vary: Origin\r\n";
    if (origin_allowed(cfg, origin))
        out += "Access-Control-Allow-Origin: " + std::string(origin) + "\r\n";
    return out;
}

std::string preflight_headers(const AuthSettings &cfg, std::string_view origin) {
    return cors_headers(cfg, origin) +
           "Access-Control-Allow-Methods: POST, OPTIONS\r\n"
           "Access-Control-Allow-Headers: Content-Type\r\n"
           "Access-Control-Max-Age: 600\r\n";
}

}  // namespace aurora::auth
