#include "json_text.h"

#include <cmath>
#include <cstdint>

namespace aurora::host {

std::string error_frame(std::string_view code, std::string_view message, std::string_view ref_json) {
    std::string out = "{\"type\":\"error\",\"code\":";
    append_json_string(out, code);
    out += ",\"message\":";
    append_json_string(out, message);
    if (!ref_json.empty()) {
        out += ",\"ref\":";
        out += ref_json;
    }
    out += '}';
    return out;
}

bool valid_error_code(std::string_view code) {
    if (code.empty() || code.size() > 64) return false;
    for (char ch : code)
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_')) return false;
    return true;
}

std::optional<std::string> canonical_ref(std::string_view ref_json) {
    if (!valid_utf8(ref_json)) return std::nullopt;
    JsonPtr j = parse_json(ref_json);
    if (!j || !(cJSON_IsString(j.get()) || (cJSON_IsNumber(j.get()) && std::isfinite(j->valuedouble))))
        return std::nullopt;
    char *printed = cJSON_PrintUnformatted(j.get());
    if (!printed) return std::nullopt;
    std::string out = printed;
    cJSON_free(printed);
    return out;
}

}  // namespace aurora::host
