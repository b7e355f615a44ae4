// cJSON with RAII, and the few helpers every plugin needs.
#pragma once

#include <aurora/common.h>
#include <cjson/cJSON.h>

#include <memory>
#include <string>
#include <string_view>

namespace aurora::plugin {

struct CJsonDelete {
    void operator()(cJSON *j) const { cJSON_Delete(j); }
};
using Json = std::unique_ptr<cJSON, CJsonDelete>;

// Parses exactly `text` (trailing whitespace allowed). nullptr on error.
inline Json parse_json(std::string_view text) {
    const char *end = nullptr;
    Json j(cJSON_ParseWithLengthOpts(text.data(), text.size(), &end, false));
    if (!j) return nullptr;
    const char *stop = text.data() + text.size();
    while (end < stop && (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t')) ++end;
    return end == stop ? std::move(j) : nullptr;
}

inline Json parse_json(aurora_str s) { return parse_json(std::string_view(s.ptr ? s.ptr : "", s.len)); }

// Compact JSON text of `j` ("null" if it cannot be printed).
inline std::string to_string(const cJSON *j) {
    char *p = cJSON_PrintUnformatted(j);
    std::string out = p ? p : "null";
    cJSON_free(p);
    return out;
}

inline std::string_view view(aurora_str s) { return s.ptr ? std::string_view(s.ptr, s.len) : std::string_view(); }
inline aurora_str str(std::string_view s) { return aurora_str{s.data(), s.size()}; }

// The member `key` if it is a string, else nullptr.
inline const char *get_string(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : nullptr;
}

}  // namespace aurora::plugin
