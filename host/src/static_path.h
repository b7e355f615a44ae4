// Which file under web_root a (percent-decoded) request path names, with no
// way out of web_root: no "..", no backslash, no NUL, and the canonical path
// checked to stay inside. Touches the file system (canonical paths) but no
// sockets; fuzzed (tests/fuzz).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace aurora::host {

// The file to serve, or nullopt with `status` 400 (a path that tries to leave
// or is malformed) or 404 (nothing there). "/" and directories mean their
// index.html. `web_root` is canonical (config.cpp makes it so).
std::optional<std::string> resolve_static(const std::string &web_root, std::string_view path, int &status);

}  // namespace aurora::host
