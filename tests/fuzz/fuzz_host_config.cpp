// The host's configuration (host/src/config.h): JSON text in, a config or an
// error naming the key out, never a crash. Relative paths resolve against a
// folder made once under $TMPDIR (it has a "web" folder, so "web_root" can
// succeed). apply_env_overrides runs too, with a few AURORA_* variables set,
// and its output is parsed again.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "config.h"
#include "fuzz_check.h"

namespace fs = std::filesystem;
using namespace aurora::host;

namespace {

fs::path g_base;

void remove_base() {
    std::error_code ec;
    if (!g_base.empty()) fs::remove_all(g_base, ec);
}

const std::string &base_dir() {
    static const std::string dir = [] {
        const char *tmp = std::getenv("TMPDIR");
        std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/aurora-fuzz-config-XXXXXX";
        FUZZ_CHECK(mkdtemp(tmpl.data()) != nullptr);
        g_base = fs::canonical(tmpl);
        std::atexit(remove_base);
        fs::create_directories(g_base / "web");
        setenv("AURORA_HOST", "127.0.0.1", 1);
        setenv("AURORA_LOG_LEVEL", "warn", 1);
        return g_base.string();
    }();
    return dir;
}

void check(const std::optional<HostConfig> &cfg, const std::string &error) {
    if (!cfg) {
        FUZZ_CHECK(!error.empty());
        return;
    }
    FUZZ_CHECK(cfg->workers >= 1 && cfg->workers <= 64);
    FUZZ_CHECK(cfg->listen_port >= 0 && cfg->listen_port <= 65535);
    FUZZ_CHECK(cfg->redis_url.starts_with("redis://") && cfg->mongo_url.starts_with("mongodb://"));
    FUZZ_CHECK(cfg->limits.hard_max_frame_bytes >= cfg->limits.max_frame_bytes);
    for (size_t i = 0; i < cfg->plugins.size(); ++i) {
        FUZZ_CHECK(!cfg->plugins[i].name.empty() && cfg->plugins[i].name.size() <= 64);
        for (size_t k = 0; k < i; ++k) FUZZ_CHECK(cfg->plugins[k].name != cfg->plugins[i].name);
    }
    (void)cfg->settings();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const std::string &base = base_dir();
    const std::string json(fuzz_bytes(data, size));
    std::string error;
    check(parse_config(json, base, error), error);

    std::string env_error;
    if (std::optional<std::string> with_env = apply_env_overrides(json, env_error)) {
        error.clear();
        check(parse_config(*with_env, base, error), error);
    } else {
        FUZZ_CHECK(!env_error.empty());
    }
    return 0;
}
