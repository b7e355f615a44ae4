#include "real_servers.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <mongoc/mongoc.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace aurora::testing {
namespace {

constexpr auto kStartDeadline = std::chrono::seconds(30);
constexpr auto kPollInterval = std::chrono::milliseconds(20);

std::string tmp_root() {
    const char *t = std::getenv("TMPDIR");
    return (t && *t) ? t : "/tmp";
}

fs::path registry_dir() { return fs::path(tmp_root()) / "aurora-test-servers"; }

bool pid_alive(int pid) { return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM); }

std::string read_file(const fs::path &p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// The registry entry, named after the server pid: "<owner pid>\n<data dir>\n".
// The pytest fixture (tests/support/real_servers.py) writes the same format.
void register_server(const std::string &entry, int owner, const std::string &data_dir) {
    fs::create_directories(registry_dir());
    std::ofstream(entry) << owner << "\n" << data_dir << "\n";
}

std::string comm_of(int pid) {
    std::string s = read_file("/proc/" + std::to_string(pid) + "/cmdline");
    auto nul = s.find('\0');
    return nul == std::string::npos ? s : s.substr(0, nul);
}

std::string find_ferretdb() {
    if (const char *env = std::getenv("AURORA_FERRETDB"); env && *env) return env;
#ifdef AURORA_FERRETDB_DEFAULT
    if (fs::exists(AURORA_FERRETDB_DEFAULT)) return AURORA_FERRETDB_DEFAULT;
#endif
    return "ferretdb";  // on PATH
}

}  // namespace

int free_port() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len) != 0) {
        int e = errno;
        close(fd);
        throw std::runtime_error(std::string("bind/getsockname: ") + std::strerror(e));
    }
    close(fd);
    return ntohs(addr.sin_port);
}

int reap_orphaned_servers() {
    std::error_code ec;
    int killed = 0;
    for (const auto &e : fs::directory_iterator(registry_dir(), ec)) {
        int server = std::atoi(e.path().filename().c_str());
        std::istringstream entry(read_file(e.path()));
        int owner = 0;
        std::string data_dir;
        entry >> owner;
        std::getline(entry >> std::ws, data_dir);
        if (pid_alive(owner)) continue;
        std::string exe = fs::path(comm_of(server)).filename();
        if (pid_alive(server) && (exe == "redis-server" || exe == "ferretdb")) {
            kill(server, SIGKILL);
            ++killed;
        }
        if (data_dir.starts_with(tmp_root() + "/aurora-")) fs::remove_all(data_dir, ec);
        fs::remove(e.path(), ec);
    }
    return killed;
}

// --- TempDir ---------------------------------------------------------------

TempDir::TempDir(const std::string &prefix) {
    std::string tmpl = tmp_root() + "/" + prefix + "-XXXXXX";
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp " + tmpl + ": " + std::strerror(errno));
    path_ = tmpl;
}

TempDir::~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
}

// --- ServerProcess -----------------------------------------------------------

ServerProcess::ServerProcess(std::string name, std::vector<std::string> argv, std::string log_path,
                             const std::string &data_dir)
    : name_(std::move(name)), log_path_(std::move(log_path)) {
    std::vector<char *> args;
    for (auto &a : argv) args.push_back(a.data());
    args.push_back(nullptr);

    int log_fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log_fd < 0) throw std::runtime_error("open " + log_path_ + ": " + std::strerror(errno));
    const pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(log_fd);
        throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    }
    if (pid == 0) {
        // Child: only async-signal-safe calls until exec.
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);  // parent already gone
        dup2(log_fd, STDOUT_FILENO);
        dup2(log_fd, STDERR_FILENO);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, STDIN_FILENO);
        setpgid(0, 0);  // Ctrl-C in a terminal reaches the test, which stops us
        execvp(args[0], args.data());
        dprintf(STDERR_FILENO, "exec %s: %s\n", args[0], strerror(errno));
        _exit(127);
    }
    close(log_fd);
    pid_ = pid;
    registry_entry_ = (registry_dir() / std::to_string(pid)).string();
    register_server(registry_entry_, parent, data_dir);
}

ServerProcess::~ServerProcess() { stop(); }

bool ServerProcess::running() {
    if (pid_ <= 0) return false;
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
        exit_status_ = status;
        pid_ = -1;
        std::error_code ec;
        fs::remove(registry_entry_, ec);
        return false;
    }
    return true;
}

void ServerProcess::stop(std::chrono::milliseconds grace) {
    if (!running()) return;
    kill(pid_, SIGTERM);
    auto deadline = Clock::now() + grace;
    while (Clock::now() < deadline) {
        if (!running()) return;
        std::this_thread::sleep_for(kPollInterval);  // polling the child's exit, bounded
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
    std::error_code ec;
    fs::remove(registry_entry_, ec);
}

std::string ServerProcess::log_tail(size_t max_lines) const {
    std::ifstream in(log_path_);
    std::deque<std::string> lines;
    for (std::string line; std::getline(in, line);) {
        lines.push_back(line);
        if (lines.size() > max_lines) lines.pop_front();
    }
    std::string out;
    for (auto &l : lines) out += "    | " + l + "\n";
    return out.empty() ? "    | (empty log)\n" : out;
}

// --- readiness -------------------------------------------------------------------

namespace {

template <typename Probe>
void wait_ready(ServerProcess &proc, const std::string &what, Probe probe) {
    auto deadline = Clock::now() + kStartDeadline;
    std::string last_error = "no attempt";
    while (Clock::now() < deadline) {
        if (!proc.running())
            throw std::runtime_error(proc.name() + " exited before answering " + what +
                                     "; its log:\n" + proc.log_tail());
        if (probe(last_error)) return;
        std::this_thread::sleep_for(kPollInterval);
    }
    throw std::runtime_error(proc.name() + " did not answer " + what + " within " +
                             std::to_string(kStartDeadline.count()) + " s (last error: " + last_error +
                             "); its log:\n" + proc.log_tail());
}

bool redis_ping(const std::string &host, int port, std::string &err) {
    timeval tv{0, 200000};
    redisContext *c = redisConnectWithTimeout(host.c_str(), port, tv);
    if (!c || c->err) {
        err = c ? c->errstr : "redisConnect returned NULL";
        if (c) redisFree(c);
        return false;
    }
    auto *reply = static_cast<redisReply *>(redisCommand(c, "PING"));
    bool ok = reply && reply->type == REDIS_REPLY_STATUS && std::string(reply->str) == "PONG";
    if (!ok) err = reply && reply->str ? reply->str : "no reply to PING";
    if (reply) freeReplyObject(reply);
    redisFree(c);
    return ok;
}

void mongoc_init_once() {
    static std::once_flag once;
    std::call_once(once, [] {
        mongoc_init();
        std::atexit(mongoc_cleanup);
    });
}

bool mongo_ping(const std::string &url, std::string &err) {
    mongoc_init_once();
    std::string uri = url + "?serverSelectionTimeoutMS=300&connectTimeoutMS=300";
    bson_error_t error;
    mongoc_uri_t *u = mongoc_uri_new_with_error(uri.c_str(), &error);
    if (!u) {
        err = error.message;
        return false;
    }
    mongoc_client_t *client = mongoc_client_new_from_uri(u);
    mongoc_uri_destroy(u);
    bson_t *cmd = BCON_NEW("ping", BCON_INT32(1));
    bson_t reply;
    bool ok = mongoc_client_command_simple(client, "admin", cmd, nullptr, &reply, &error);
    if (!ok) err = error.message;
    bson_destroy(&reply);
    bson_destroy(cmd);
    mongoc_client_destroy(client);
    return ok;
}

constexpr int kStartAttempts = 3;  // a free port can be taken between probe and bind

}  // namespace

// --- RedisServer -------------------------------------------------------------------

std::unique_ptr<RedisServer> RedisServer::start() {
    reap_orphaned_servers();
    std::string last;
    for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
        auto s = std::make_unique<RedisServer>();
        s->dir_ = std::make_unique<TempDir>("aurora-redis");
        s->port_ = free_port();
        s->proc_ = std::make_unique<ServerProcess>(
            "redis-server",
            std::vector<std::string>{"redis-server", "--port", std::to_string(s->port_), "--bind",
                                     s->host_, "--dir", s->dir_->path(), "--save", "",
                                     "--appendonly", "no", "--daemonize", "no", "--logfile", "",
                                     "--protected-mode", "yes"},
            s->dir_->path() + "/redis.log", s->dir_->path());
        try {
            wait_ready(*s->proc_, "PING", [&](std::string &err) { return redis_ping(s->host_, s->port_, err); });
            return s;
        } catch (const std::exception &e) {
            last = e.what();
        }
    }
    throw std::runtime_error("cannot start redis-server: " + last);
}

RedisServer::~RedisServer() { stop(); }

void RedisServer::stop() {
    if (proc_) proc_->stop();
}

std::string RedisServer::url() const { return "redis://" + host_ + ":" + std::to_string(port_) + "/0"; }

// --- FerretDbServer ----------------------------------------------------------------

std::unique_ptr<FerretDbServer> FerretDbServer::start() {
    reap_orphaned_servers();
    const std::string exe = find_ferretdb();
    std::string last;
    for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
        auto s = std::make_unique<FerretDbServer>();
        s->dir_ = std::make_unique<TempDir>("aurora-ferretdb");
        s->port_ = free_port();
        const std::string d = s->dir_->path();
        s->proc_ = std::make_unique<ServerProcess>(
            "ferretdb",
            // The same SQLite settings as tests/support/real_servers.py (reasons there).
            std::vector<std::string>{exe, "--handler=sqlite", "--sqlite-url=file:" + d + "/?_pragma=synchronous(normal)",
                                     "--test-batch-size=1000", "--state-dir=" + d,
                                     "--listen-addr=" + s->host_ + ":" + std::to_string(s->port_),
                                     "--debug-addr=-", "--telemetry=disable", "--log-level=warn"},
            d + "/ferretdb.log", d);
        try {
            const std::string url = s->url("admin");
            wait_ready(*s->proc_, "ping", [&](std::string &err) { return mongo_ping(url, err); });
            return s;
        } catch (const std::exception &e) {
            last = e.what();
        }
    }
    throw std::runtime_error("cannot start ferretdb (" + exe + "): " + last);
}

FerretDbServer::~FerretDbServer() { stop(); }

void FerretDbServer::stop() {
    if (proc_) proc_->stop();
}

std::string FerretDbServer::url(const std::string &database) const {
    return "mongodb://" + host_ + ":" + std::to_string(port_) + "/" + database;
}

// --- RealServers ---------------------------------------------------------------------

namespace {
std::mutex g_mu;
std::unique_ptr<RedisServer> g_redis;
std::unique_ptr<FerretDbServer> g_mongo;
}  // namespace

RedisServer &RealServers::redis() {
    std::lock_guard lock(g_mu);
    if (!g_redis) g_redis = RedisServer::start();
    return *g_redis;
}

FerretDbServer &RealServers::mongo() {
    std::lock_guard lock(g_mu);
    if (!g_mongo) g_mongo = FerretDbServer::start();
    return *g_mongo;
}

void RealServers::stop_all() {
    std::lock_guard lock(g_mu);
    g_redis.reset();
    g_mongo.reset();
}

}  // namespace aurora::testing
