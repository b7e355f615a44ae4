#include "frame_check.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "json_text.h"

namespace aurora::host {

namespace {

// "\uD800"-"\uDFFF" written as a JSON escape.
bool has_lone_surrogate_escape(std::string_view text) {
    for (size_t i = 0; i + 3 < text.size(); ++i) {
        if (text[i] == '\\' && text[i + 1] == 'u' && (text[i + 2] == 'd' || text[i + 2] == 'D') &&
            text[i + 3] != '\0' && std::strchr("89abcdefABCDEF", text[i + 3]))
            return true;
    }
    return false;
}

// A name twice in one object: JSON leaves its meaning open (RFC 8259 §4).
// cJSON takes the first, Python's json the last, and a plugin that rewrites
// a field removes only one copy: a policy could judge one text while chat
// stores the other. The top level is where every plugin reads its fields.
// A frame has a handful of keys: compared pairwise in place, no allocation
// per message; past kPairwiseMax, sorted (n log n, never quadratic).
bool has_duplicate_key(const cJSON *object) {
    constexpr size_t kPairwiseMax = 16;
    size_t n = 0;
    for (const cJSON *c = object->child; c && n <= kPairwiseMax; c = c->next) ++n;
    if (n <= kPairwiseMax) {
        for (const cJSON *a = object->child; a; a = a->next)
            for (const cJSON *b = a->next; b; b = b->next)
                if (std::string_view(a->string) == std::string_view(b->string)) return true;
        return false;
    }
    std::vector<std::string_view> keys;
    for (const cJSON *c = object->child; c; c = c->next) keys.emplace_back(c->string);
    std::sort(keys.begin(), keys.end());
    return std::adjacent_find(keys.begin(), keys.end()) != keys.end();
}

FrameCheck refuse(const char *code, const char *message, std::string ref_json = {}) {
    FrameCheck f;
    f.error = code;
    f.message = message;
    f.ref_json = std::move(ref_json);
    return f;
}

}  // namespace

FrameCheck check_frame(std::string_view text) {
    JsonPtr j = parse_json(text);
    if (!j) {
        // Valid UTF-8 (the frame reader checked) that cJSON refuses for a
        // "\uD8xx" escape with no partner: a lone surrogate is no character.
        if (has_lone_surrogate_escape(text)) return refuse("bad_utf8", "a \\u escape encodes a lone UTF-16 surrogate");
        if (plugin::has_nul(text)) return refuse("bad_json", "a string holds a NUL (\\u0000), which cannot be kept");
        return refuse("bad_json", "frame is not valid JSON");
    }
    if (!cJSON_IsObject(j.get())) return refuse("not_object", "frame must be a JSON object");
    if (has_duplicate_key(j.get())) return refuse("bad_json", "a key appears more than once in the frame");
    FrameCheck f;
    if (const cJSON *ref = cJSON_GetObjectItemCaseSensitive(j.get(), "ref")) {
        // A number too large for a double (1e999) would be echoed as null: refused like any non-number.
        if (!cJSON_IsString(ref) && !(cJSON_IsNumber(ref) && std::isfinite(ref->valuedouble)))
            return refuse("bad_field", "'ref' must be a string or a number");
        char *r = cJSON_PrintUnformatted(ref);
        if (r) f.ref_json = r;
        cJSON_free(r);
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j.get(), "type");
    if (type) {
        if (!cJSON_IsString(type)) return refuse("bad_field", "'type' must be a string", std::move(f.ref_json));
        f.type = type->valuestring;
    } else if (cJSON_GetObjectItemCaseSensitive(j.get(), "text")) {
        f.type = "message";  // the seed's plain {"text": ...}
    } else {
        return refuse("missing_type", "frame needs a 'type' (or a 'text' to post a message)", std::move(f.ref_json));
    }
    return f;
}

}  // namespace aurora::host
