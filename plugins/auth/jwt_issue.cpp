#include "jwt_issue.h"

#include "jwt_handle.h"

namespace aurora::auth {

std::optional<std::string> issue_token(std::string_view secret, jwt_alg_t alg, std::string_view user_id,
                                       std::string_view username, int64_t now_s, int64_t ttl_s) {
    jwt_t *raw = nullptr;
    if (jwt_new(&raw) != 0 || !raw) return std::nullopt;
    plugin::JwtHandle jwt(raw);
    const std::string uid(user_id), name(username);
    if (jwt_add_grant(jwt.get(), "userId", uid.c_str()) != 0 ||
        jwt_add_grant(jwt.get(), "username", name.c_str()) != 0 ||
        jwt_add_grant_int(jwt.get(), "iat", static_cast<long>(now_s)) != 0 ||
        jwt_add_grant_int(jwt.get(), "exp", static_cast<long>(now_s + ttl_s)) != 0 ||
        jwt_set_alg(jwt.get(), alg, reinterpret_cast<const unsigned char *>(secret.data()),
                    static_cast<int>(secret.size())) != 0)
        return std::nullopt;
    plugin::JwtText text(jwt_encode_str(jwt.get()));
    if (!text) return std::nullopt;
    return std::string(text.get());
}

}  // namespace aurora::auth
