#include "static_path.h"

#include <filesystem>

namespace fs = std::filesystem;

namespace aurora::host {

std::optional<std::string> resolve_static(const std::string &web_root, std::string_view path, int &status) {
    status = 400;
    if (path.empty() || path.front() != '/' || path.find('\\') != std::string_view::npos ||
        path.find('\0') != std::string_view::npos)
        return std::nullopt;
    std::string_view rest = path;
    while (!rest.empty()) {
        size_t slash = rest.find('/', 1);
        std::string_view seg = rest.substr(1, slash == std::string_view::npos ? std::string_view::npos : slash - 1);
        if (seg == "..") return std::nullopt;
        rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
    }
    status = 404;
    if (web_root.empty()) return std::nullopt;
    std::string rel(path.substr(1));
    if (rel.empty() || path.back() == '/') rel += "index.html";
    std::error_code ec;
    fs::path full = fs::weakly_canonical(fs::path(web_root) / rel, ec);
    std::string full_s = full.string();
    // The second fence: whatever symlinks say, the file is inside web_root.
    if (ec || !(full_s == web_root || full_s.starts_with(web_root + "/"))) return std::nullopt;
    if (fs::is_directory(full, ec)) {
        // The folder's index.html may be a symlink too: fence it the same way.
        full = fs::weakly_canonical(full / "index.html", ec);
        full_s = full.string();
        if (ec || !full_s.starts_with(web_root + "/")) return std::nullopt;
    }
    if (!fs::is_regular_file(full, ec)) return std::nullopt;
    return full_s;
}

}  // namespace aurora::host
