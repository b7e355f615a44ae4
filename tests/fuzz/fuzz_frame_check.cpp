// The host's classification of every inbound text message (host/src/frame_check.h):
// JSON object, "type" a string (or "text" present), "ref" a string or a
// number; json_text.cpp's escaper, which writes every string the host
// sends back (error messages quoting client input, metrics, logs); and the
// error frame built from them.
#include <string>

#include "frame_check.h"
#include "fuzz_check.h"
#include "json_text.h"

using namespace aurora::host;

namespace {

// What the host sends is checked with a plain JSON parser: parse_json
// refuses a NUL (it would cut a string short), which JSON itself allows as
// "\u0000" and the escaper writes for a NUL in a message.
JsonPtr parse_any(std::string_view text) {
    const char *end = nullptr;
    JsonPtr j(cJSON_ParseWithLengthOpts(text.data(), text.size(), &end, false));
    return j && end == text.data() + text.size() ? std::move(j) : nullptr;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    std::string_view in = fuzz_bytes(data, size);

    FrameCheck f = check_frame(in);
    if (f.error) {
        FUZZ_CHECK(f.message && *f.message);
        const std::string_view code = f.error;
        FUZZ_CHECK(code == "bad_json" || code == "bad_utf8" || code == "not_object" || code == "bad_field" ||
                   code == "missing_type");
    } else {
        JsonPtr j = parse_json(in);
        FUZZ_CHECK(j && cJSON_IsObject(j.get()));
        for (const cJSON *a = j->child; a; a = a->next)  // each key once: every reader sees the same frame
            for (const cJSON *b = a->next; b; b = b->next) FUZZ_CHECK(std::string_view(a->string) != b->string);
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(j.get(), "type");
        FUZZ_CHECK(type ? cJSON_IsString(type) && f.type == type->valuestring : f.type == "message");
    }
    if (!f.ref_json.empty()) {
        // "ref" is echoed verbatim into replies: it must be one JSON string or number.
        JsonPtr r = parse_json(f.ref_json);
        FUZZ_CHECK(r && (cJSON_IsString(r.get()) || cJSON_IsNumber(r.get())));
        // What the host parsed is canonical already (the frame reader has
        // checked UTF-8 before check_frame sees a frame).
        if (valid_utf8(in)) FUZZ_CHECK(canonical_ref(f.ref_json) == f.ref_json);
    }
    // The error frame (the host's and, through msg_reply_error/send_error,
    // every plugin's): one JSON object with the input as its message and
    // the ref as parsed.
    {
        JsonPtr e = parse_any(error_frame("bad_field", in, f.ref_json));
        FUZZ_CHECK(e && cJSON_IsObject(e.get()));
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e.get(), "message");
        FUZZ_CHECK(cJSON_IsString(msg));
        FUZZ_CHECK((cJSON_GetObjectItemCaseSensitive(e.get(), "ref") != nullptr) == !f.ref_json.empty());
    }
    // A ref a plugin passes to send_error: taken only as canonical JSON text.
    if (std::optional<std::string> ref = canonical_ref(in)) {
        FUZZ_CHECK(valid_utf8(*ref) && canonical_ref(*ref) == *ref);
        JsonPtr e = parse_any(error_frame("x", "m", *ref));
        FUZZ_CHECK(e && cJSON_IsObject(e.get()));
    }

    // The escaper: always valid UTF-8, always one JSON string, and a round
    // trip for text that is valid UTF-8 without NUL.
    std::string quoted = json_string(in);
    FUZZ_CHECK(valid_utf8(quoted));
    JsonPtr back = parse_any(quoted);
    FUZZ_CHECK(back && cJSON_IsString(back.get()));
    if (valid_utf8(in) && in.find('\0') == std::string_view::npos) FUZZ_CHECK(back->valuestring == in);
    return 0;
}
