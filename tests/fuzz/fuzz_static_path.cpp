// Static file resolution (host/src/static_path.h) against a real folder,
// made once per process under $TMPDIR:
//
//   root/index.html  root/a.txt  root/sub/index.html  root/sub/b.js
//   root/empty/                      (a folder without index.html)
//   root/sub/up -> ..                (a symlink that stays inside)
//   root/out -> ../outside           (a folder symlink that leaves)
//   root/secret.txt -> ../outside/secret.txt
//   root/trap/index.html -> ../../outside/secret.txt
//   root/loop -> loop                (a symlink loop)
//
// Invariants: a returned path starts with web_root + "/", is a regular
// file, and its canonical path is inside web_root too (symlinks included);
// a path with a ".." segment, a backslash or a NUL is a 400.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "fuzz_check.h"
#include "static_path.h"

namespace fs = std::filesystem;
using namespace aurora::host;

namespace {

fs::path g_base;

void remove_base() {
    std::error_code ec;
    if (!g_base.empty()) fs::remove_all(g_base, ec);
}

const std::string &web_root() {
    static const std::string root = [] {
        const char *tmp = std::getenv("TMPDIR");
        std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/aurora-fuzz-static-XXXXXX";
        FUZZ_CHECK(mkdtemp(tmpl.data()) != nullptr);
        g_base = fs::canonical(tmpl);
        std::atexit(remove_base);
        const fs::path r = g_base / "root", out = g_base / "outside";
        for (const fs::path &d : {r, r / "sub", r / "empty", r / "trap", out}) fs::create_directories(d);
        for (const fs::path &f : {r / "index.html", r / "a.txt", r / "sub" / "index.html", r / "sub" / "b.js",
                                  out / "secret.txt", out / "index.html"})
            std::ofstream(f) << "x";
        fs::create_directory_symlink("..", r / "sub" / "up");
        fs::create_directory_symlink("../outside", r / "out");
        fs::create_symlink("../outside/secret.txt", r / "secret.txt");
        fs::create_symlink("../../outside/secret.txt", r / "trap" / "index.html");
        fs::create_symlink("loop", r / "loop");
        return r.string();
    }();
    return root;
}

bool has_dotdot_segment(std::string_view p) {
    size_t at = 0;
    while (at <= p.size()) {
        size_t slash = p.find('/', at);
        std::string_view seg = p.substr(at, slash == std::string_view::npos ? std::string_view::npos : slash - at);
        if (seg == "..") return true;
        if (slash == std::string_view::npos) break;
        at = slash + 1;
    }
    return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 1024) return 0;  // longer paths only cost file-system calls
    const std::string &root = web_root();
    std::string_view path = fuzz_bytes(data, size);
    int status = 0;
    std::optional<std::string> file = resolve_static(root, path, status);
    if (!file) {
        FUZZ_CHECK(status == 400 || status == 404);
        return 0;
    }
    FUZZ_CHECK(file->starts_with(root + "/"));
    FUZZ_CHECK(path.find('\\') == std::string_view::npos && path.find('\0') == std::string_view::npos);
    FUZZ_CHECK(!has_dotdot_segment(path));
    std::error_code ec;
    FUZZ_CHECK(fs::is_regular_file(*file, ec));
    // Whatever symlinks say, the file served is inside web_root.
    const std::string real = fs::canonical(*file, ec).string();
    if (!real.starts_with(root + "/")) {
        std::fprintf(stderr, "served %s, which is %s\n", file->c_str(), real.c_str());
        FUZZ_CHECK(real.starts_with(root + "/"));
    }
    return 0;
}
