#include "json_text.h"

#include <cmath>
#include <cstdint>

namespace aurora::host {

JsonPtr parse_json(std::string_view text) {
    const char *end = nullptr;
    JsonPtr j(cJSON_ParseWithLengthOpts(text.data(), text.size(), &end, false));
    if (!j) return nullptr;
    const char *stop = text.data() + text.size();
    while (end && end < stop && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')) ++end;
    if (end != stop) return nullptr;  // trailing garbage
    return j;
}

bool valid_utf8(std::string_view s) {
    const auto *p = reinterpret_cast<const unsigned char *>(s.data());
    const auto *end = p + s.size();
    while (p < end) {
        // Fast path: 8 ASCII bytes at a time.
        while (end - p >= 8) {
            uint64_t w;
            __builtin_memcpy(&w, p, 8);
            if (w & 0x8080808080808080ULL) break;
            p += 8;
        }
        if (p >= end) break;
        unsigned char c = *p;
        if (c < 0x80) {
            ++p;
            continue;
        }
        int n;
        uint32_t cp;
        if ((c & 0xE0) == 0xC0) {
            n = 1;
            cp = c & 0x1F;
            if (c < 0xC2) return false;  // overlong
        } else if ((c & 0xF0) == 0xE0) {
            n = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3;
            cp = c & 0x07;
            if (c > 0xF4) return false;
        } else {
            return false;
        }
        if (end - p <= n) return false;
        for (int i = 1; i <= n; ++i) {
            if ((p[i] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF))) return false;
        if (cp >= 0xD800 && cp <= 0xDFFF) return false;
        p += n + 1;
    }
    return true;
}

void append_json_string(std::string &out, std::string_view s) {
    static const char hex[] = "0123456789abcdef";
    out += '"';
    size_t i = 0;
    while (i < s.size()) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            // Copy a valid multi-byte sequence; replace anything else.
            size_t n = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
            if (n && i + n <= s.size() && valid_utf8(s.substr(i, n))) {
                out.append(s.data() + i, n);
                i += n;
            } else {
                out += "\xEF\xBF\xBD";
                ++i;
            }
            continue;
        }
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (c < 0x20) {
                out += "\\u00";
                out += hex[c >> 4];
                out += hex[c & 0xF];
            } else {
                out += static_cast<char>(c);
            }
        }
        ++i;
    }
    out += '"';
}

std::string json_string(std::string_view s) {
    std::string out;
    append_json_string(out, s);
    return out;
}

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
