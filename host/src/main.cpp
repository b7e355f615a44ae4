// aurora-host: a thin main over libaurora_host (DESIGN §8).
//
//   aurora-host --config FILE         run (exit 0 on SIGTERM/SIGINT)
//   aurora-host --check-config FILE   validate, load and init every plugin, exit
//   aurora-host --version
//
// Exit codes: 0 clean shutdown, 2 bad config or plugin refused, 1 other fatal.
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "host.h"
#include "log.h"

using aurora::host::Host;
using aurora::host::HostConfig;

namespace {

constexpr int kExitOk = AURORA_HOST_EXIT_OK;
constexpr int kExitFatal = AURORA_HOST_EXIT_FATAL;
constexpr int kExitConfig = AURORA_HOST_EXIT_BAD_CONFIG;

void usage(FILE *out) {
    std::fprintf(out,
                 "usage: aurora-host --config FILE        run the host\n"
                 "       aurora-host --check-config FILE  validate the config and load its plugins, then exit\n"
                 "       aurora-host --version            print the host and ABI versions\n"
                 "Environment overrides: AURORA_HOST AURORA_PORT AURORA_REDIS_URL AURORA_MONGO_URL\n"
                 "  AURORA_JWT_SECRET AURORA_PLUGIN_PATH AURORA_LOG_LEVEL (see docs/configuration.md)\n");
}

bool read_file(const std::string &path, std::string &out, std::string &error) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        error = "cannot read config file " + path + ": " + std::strerror(errno);
        return false;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    out = ss.str();
    return true;
}

std::optional<HostConfig> load_config(const std::string &path, std::string &error) {
    std::string text;
    if (!read_file(path, text, error)) return std::nullopt;
    auto overridden = aurora::host::apply_env_overrides(text, error);
    if (!overridden) return std::nullopt;
    std::string base = std::filesystem::absolute(path).parent_path().string();
    auto cfg = aurora::host::parse_config(*overridden, base, error);
    if (!cfg) error = path + ": " + error;
    return cfg;
}

sigset_t stop_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);  // internal: wakes the signal thread to exit
    return set;
}

// Every connection is a descriptor: the soft limit goes up to the hard one
// (as Redis and nginx do), so that `ulimit -Hn` is the only knob. Returns
// the limit in force.
// At most 2^20 though: lws 4.1 takes a limit above 10,000,000 (a container's
// "infinity") for a mistake and serves only 2,560 descriptors then.
rlim_t raise_open_files_limit() {
    constexpr rlim_t kMost = rlim_t{1} << 20;
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
    rlim_t target = std::min(rl.rlim_max, kMost);
    if (rl.rlim_cur != target && (rl.rlim_cur < target || rl.rlim_cur > kMost)) {
        rlimit want = rl;
        want.rlim_cur = target;
        if (setrlimit(RLIMIT_NOFILE, &want) == 0) rl = want;
    }
    return rl.rlim_cur;
}

// One service process: create, run until SIGTERM/SIGINT, destroy.
int serve(HostConfig cfg) {
    std::string error;
    int code = kExitFatal;
    auto host = std::make_unique<aurora_host>();
    if (!host->impl.start(std::move(cfg), error, code)) {
        aurora::host::Logger::instance().write(AURORA_LOG_ERROR, "host", 0, error);
        std::fprintf(stderr, "aurora-host: %s\n", error.c_str());
        return code;
    }
    aurora_host *h = host.get();
    std::thread signals([h] {
        sigset_t set = stop_signals();
        int sig = 0;
        while (sigwait(&set, &sig) == 0) {
            if (sig == SIGUSR1) return;
            aurora::host::hlog(AURORA_LOG_INFO, 0, "received %s: draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            aurora_host_stop(h);
        }
    });
    int rc = host->impl.run();
    pthread_kill(signals.native_handle(), SIGUSR1);
    signals.join();
    host.reset();  // closes what is left, plugin shutdown hooks, dlclose
    return rc;
}

// Several service processes sharing the port (SO_REUSEPORT). The parent only
// forwards signals and reaps; any child failing stops the others.
int serve_workers(const HostConfig &cfg) {
    std::vector<pid_t> children;
    for (int i = 0; i < cfg.workers; ++i) {
        pid_t pid = fork();
        if (pid < 0) {
            std::perror("aurora-host: fork");
            for (pid_t c : children) kill(c, SIGTERM);
            return kExitFatal;
        }
        if (pid == 0) _exit(serve(cfg));
        children.push_back(pid);
    }
    aurora::host::hlog(AURORA_LOG_INFO, 0, "started %d service processes on port %d", cfg.workers, cfg.listen_port);
    sigset_t set = stop_signals();
    sigaddset(&set, SIGCHLD);
    int worst = kExitOk;
    bool stopping = false;
    size_t alive = children.size();
    while (alive > 0) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0) break;
        if (sig == SIGTERM || sig == SIGINT) {
            stopping = true;
            for (pid_t c : children) kill(c, SIGTERM);
            continue;
        }
        int status = 0;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            --alive;
            int rc = WIFEXITED(status) ? WEXITSTATUS(status) : kExitFatal;
            if (rc != kExitOk || !stopping) {
                aurora::host::hlog(AURORA_LOG_ERROR, 0, "service process %d ended (exit %d): stopping the others",
                                   static_cast<int>(pid), rc);
                worst = rc != kExitOk ? rc : kExitFatal;
                if (!stopping) {
                    stopping = true;
                    for (pid_t c : children) kill(c, SIGTERM);
                }
            }
        }
    }
    return worst;
}

// Before any thread and any plugin: libmongoc (linked by the plugins that
// read MongoDB) initialises itself when it is loaded and keeps its counters
// in /dev/shm/mongoc-<pid> for the mongoc-stat tool. Nothing reads them; a
// host that is killed leaves its file behind (tmpfs memory), and a later
// process given the same pid prints "Falling back to malloc for counters"
// on stderr, outside the JSON log. Counters in plain memory instead.
void disable_driver_shared_counters() { setenv("MONGOC_DISABLE_SHM", "1", 0); }

}  // namespace

int main(int argc, char **argv) {
    std::string mode, file;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--version" || a == "-V") {
            std::printf("aurora-host %s (ABI %d.%d)\n", aurora_host_version(), AURORA_ABI_MAJOR, AURORA_ABI_MINOR);
            return kExitOk;
        }
        if (a == "--help" || a == "-h") {
            usage(stdout);
            return kExitOk;
        }
        if ((a == "--config" || a == "--check-config") && i + 1 < argc) {
            mode = a;
            file = argv[++i];
            continue;
        }
        std::fprintf(stderr, "aurora-host: unexpected argument '%s'\n", a.c_str());
        usage(stderr);
        return kExitConfig;
    }
    if (mode.empty()) {
        usage(stderr);
        return kExitConfig;
    }

    // Before any thread exists: signals are taken with sigwait, never by handlers.
    sigset_t set = stop_signals();
    sigaddset(&set, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    signal(SIGPIPE, SIG_IGN);
    disable_driver_shared_counters();

    std::string error;
    auto cfg = load_config(file, error);
    if (!cfg) {
        std::fprintf(stderr, "aurora-host: %s\n", error.c_str());
        return kExitConfig;
    }
    if (mode == "--check-config") {
        Host host;
        int code = kExitFatal;
        if (!host.check(std::move(*cfg), error, code)) {
            std::fprintf(stderr, "aurora-host: %s\n", error.c_str());
            return code;
        }
        std::printf("config ok: %s\n", file.c_str());
        return kExitOk;
    }
    rlim_t files = raise_open_files_limit();
    aurora::host::Logger::instance().configure(cfg->log_level, cfg->log_format);
    aurora::host::hlog(AURORA_LOG_INFO, 0, "open files limit %llu (about as many connections)",
                       static_cast<unsigned long long>(files));
    if (cfg->workers > 1) return serve_workers(*cfg);
    return serve(std::move(*cfg));
}
