#include "credentials.h"

#include "json.h"

namespace aurora::auth {

namespace {

Credentials refuse(const char *why) {
    Credentials c;
    c.error = why;
    return c;
}

bool missing(const cJSON *v) { return !v || cJSON_IsNull(v) || (cJSON_IsString(v) && v->valuestring[0] == '\0'); }

}  // namespace

bool valid_username(std::string_view name) {
    if (name.size() < kUsernameMin || name.size() > kUsernameMax) return false;
    for (char c : name) {
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
                  c == '.' || c == '-';
        if (!ok) return false;
    }
    return true;
}

Credentials parse_credentials(std::string_view body) {
    if (body.size() > kMaxBodyBytes) {
        Credentials c = refuse("Body too large");
        c.status = 413;
        return c;
    }
    // cJSON would cut "longenough\u0000" to "longenough" (parse_json refuses
    // it): said plainly here rather than as invalid JSON.
    if (plugin::has_nul(body)) return refuse("NUL characters are not allowed");
    plugin::Json root = plugin::parse_json(body);
    if (!root) return refuse("Invalid JSON");
    if (!cJSON_IsObject(root.get())) return refuse("Body must be a JSON object");
    const cJSON *user = cJSON_GetObjectItemCaseSensitive(root.get(), "username");
    const cJSON *pass = cJSON_GetObjectItemCaseSensitive(root.get(), "password");
    if (missing(user) || missing(pass)) return refuse("Missing fields");  // the seed's message
    if (!cJSON_IsString(user) || !cJSON_IsString(pass)) return refuse("username and password must be strings");
    std::string_view name(user->valuestring), password(pass->valuestring);
    if (!valid_username(name))
        return refuse("username must be 3 to 32 characters of letters, digits, '_', '.' or '-'");
    if (password.size() < kPasswordMin || password.size() > kPasswordMax)
        return refuse("password must be 8 to 128 bytes");
    Credentials c;
    c.ok = true;
    c.username = name;
    c.password = password;
    return c;
}

}  // namespace aurora::auth
