// Small JSON text helpers: string escaping, RAII for cJSON, and the check
// that decides whether an inbound frame is acceptable.
#pragma once

#include <cjson/cJSON.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace aurora::host {

struct CJsonDelete {
    void operator()(cJSON *j) const { cJSON_Delete(j); }
};
using JsonPtr = std::unique_ptr<cJSON, CJsonDelete>;

// Parses exactly `text` (trailing whitespace allowed, nothing else). NULL on error.
JsonPtr parse_json(std::string_view text);

// Appends `s` as a JSON string literal (quotes included). Bytes that are not
// valid UTF-8 are replaced by U+FFFD so the output is always valid JSON.
void append_json_string(std::string &out, std::string_view s);
std::string json_string(std::string_view s);

// The error frame, the one wire shape of every error the host sends or a
// plugin asks it to send (docs/protocol.md, "Errors"):
// {"type":"error","code":...,"message":...,"ref":...}, "ref" (JSON text,
// already checked) only when not empty.
std::string error_frame(std::string_view code, std::string_view message, std::string_view ref_json);
// A stable error code: [a-z0-9_]+, at most 64 characters.
bool valid_error_code(std::string_view code);
// A "ref" given as JSON text (by a plugin): if it is one JSON string or
// finite number in valid UTF-8, its canonical text, as the host echoes refs
// (cJSON's print: "01" is 1, control characters escaped); else nullopt.
std::optional<std::string> canonical_ref(std::string_view ref_json);

// True if `s` is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool valid_utf8(std::string_view s);

}  // namespace aurora::host
