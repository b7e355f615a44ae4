// Small JSON text helpers: string escaping, RAII for cJSON, and the check
// that decides whether an inbound frame is acceptable.
#pragma once

#include <cjson/cJSON.h>

#include <optional>
#include <string>
#include <string_view>

#include "json.h"  // plugins/common (Aurora::kit): the one home of the JSON text helpers

namespace aurora::host {

// Exact parsing (cJSON RAII), UTF-8 checking and string literals: the
// kit's, shared with the plugins.
using JsonPtr = plugin::Json;
using plugin::append_json_string;
using plugin::json_string;
using plugin::parse_json;
using plugin::valid_utf8;

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

}  // namespace aurora::host
