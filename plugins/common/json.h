// JSON text: cJSON with RAII, and the few helpers every plugin (and the
// host: host/src/json_text.h) needs: exact parsing, UTF-8 checking, string
// literals.
#pragma once

#include <aurora/common.h>
#include <cjson/cJSON.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace aurora::plugin {

struct CJsonDelete {
    void operator()(cJSON *j) const { cJSON_Delete(j); }
};
using Json = std::unique_ptr<cJSON, CJsonDelete>;

// A NUL in a string of `text` (JSON), as a "\u0000" escape or a raw byte
// (cJSON takes raw control bytes): cJSON ends the string there, so
// "a\u0000b" would be read as "a" and the rest silently lost. Escaped
// backslashes ("\\u0000" is text) are skipped as the pairs they are.
inline bool has_nul(std::string_view text) {
    if (text.find('\0') != std::string_view::npos) return true;
    for (size_t i = text.find('\\'); i != std::string_view::npos && i + 1 < text.size(); i = text.find('\\', i + 2)) {
        if (text[i + 1] == 'u' && text.substr(i + 2, 4) == "0000") return true;
    }
    return false;
}

// Parses exactly `text` (trailing whitespace allowed). nullptr on error,
// and for text with a NUL in it (has_nul: it cannot be kept).
inline Json parse_json(std::string_view text) {
    if (has_nul(text)) return nullptr;
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

// True if a name appears twice among `object`'s members. JSON leaves the
// meaning open (RFC 8259 §4): cJSON reads the first, Python's json the last,
// and removing "the" key removes only one. O(n log n).
inline bool has_duplicate_key(const cJSON *object) {
    std::vector<std::string_view> keys;
    for (const cJSON *c = object ? object->child : nullptr; c; c = c->next)
        if (c->string) keys.emplace_back(c->string);
    std::sort(keys.begin(), keys.end());
    return std::adjacent_find(keys.begin(), keys.end()) != keys.end();
}

// Removes every member named `key` in one pass (a repeated key: all copies).
inline void delete_all(cJSON *object, const char *key) {
    for (cJSON *c = object ? object->child : nullptr; c;) {
        cJSON *next = c->next;
        if (c->string && std::strcmp(c->string, key) == 0) cJSON_Delete(cJSON_DetachItemViaPointer(object, c));
        c = next;
    }
}

// True if `s` is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
inline bool valid_utf8(std::string_view s) {
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

// Appends `s` as a JSON string literal (quotes included). Bytes that are not
// valid UTF-8 are replaced by U+FFFD so the output is always valid JSON.
inline void append_json_string(std::string &out, std::string_view s) {
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

inline std::string json_string(std::string_view s) {
    std::string out;
    append_json_string(out, s);
    return out;
}

}  // namespace aurora::plugin
