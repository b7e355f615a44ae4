// What the host checks in every inbound text message before any plugin sees
// it: JSON, an object with each key once, "type" a string (or "text" present: the seed's plain
// message), "ref" a string or a number. Pure; fuzzed (tests/fuzz).
#pragma once

#include <string>
#include <string_view>

namespace aurora::host {

struct FrameCheck {
    std::string type;       // "message" for the seed's {"text": ...}
    std::string ref_json;   // the raw JSON of "ref", or empty
    const char *error = nullptr;  // a stable code (docs/protocol.md) when the frame is refused
    const char *message = nullptr;
};

FrameCheck check_frame(std::string_view text);

}  // namespace aurora::host
