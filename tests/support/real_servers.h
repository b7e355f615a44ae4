// Real Redis and FerretDB (MongoDB wire protocol) servers for GoogleTest.
//
// Each server is a child process on a free loopback port with its data in a
// fresh temporary folder. start() returns once the server answers (Redis
// PING, MongoDB ping) or throws std::runtime_error carrying the server's own
// log tail; a test that needs a server therefore fails, never skips.
//
// Clean-up, in three layers:
//   - the destructor (and stop()) sends SIGTERM, then SIGKILL after a deadline;
//   - the child gets PR_SET_PDEATHSIG=SIGKILL, so it dies with the test
//     process even when that process is killed with SIGKILL;
//   - every server is registered in $TMPDIR/aurora-test-servers/; the next
//     start() of any fixture (C++ or pytest) kills servers whose owner died.
//
// Thread contract: construct, start and stop from one thread (the test's).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace aurora::testing {

// A child process with its stdout/stderr in a log file.
class ServerProcess {
public:
    // Starts argv[0] (searched on PATH); data_dir is removed by whoever reaps
    // the server if its owner dies without stopping it.
    ServerProcess(std::string name, std::vector<std::string> argv, std::string log_path,
                  const std::string &data_dir);
    ~ServerProcess();
    ServerProcess(const ServerProcess &) = delete;
    ServerProcess &operator=(const ServerProcess &) = delete;

    bool running();  // false once the child has exited (reaps it)
    void stop(std::chrono::milliseconds grace = std::chrono::seconds(5));
    std::string log_tail(size_t max_lines = 40) const;
    int pid() const { return pid_; }
    const std::string &name() const { return name_; }

private:
    std::string name_;
    std::string log_path_;
    std::string registry_entry_;
    int pid_ = -1;
    int exit_status_ = 0;
};

// A temporary folder removed (recursively) on destruction.
class TempDir {
public:
    explicit TempDir(const std::string &prefix);
    ~TempDir();
    TempDir(const TempDir &) = delete;
    TempDir &operator=(const TempDir &) = delete;
    const std::string &path() const { return path_; }

private:
    std::string path_;
};

class RedisServer {
public:
    static std::unique_ptr<RedisServer> start();
    RedisServer() = default;  // use start()
    ~RedisServer();
    const std::string &host() const { return host_; }
    int port() const { return port_; }
    std::string url() const;  // redis://127.0.0.1:PORT/0
    void stop();

private:
    std::string host_ = "127.0.0.1";
    int port_ = 0;
    std::unique_ptr<TempDir> dir_;
    std::unique_ptr<ServerProcess> proc_;
};

class FerretDbServer {
public:
    static std::unique_ptr<FerretDbServer> start();
    FerretDbServer() = default;  // use start()
    ~FerretDbServer();
    const std::string &host() const { return host_; }
    int port() const { return port_; }
    // mongodb://127.0.0.1:PORT/aurorachat (or another database name)
    std::string url(const std::string &database = "aurorachat") const;
    void stop();

private:
    std::string host_ = "127.0.0.1";
    int port_ = 0;
    std::unique_ptr<TempDir> dir_;
    std::unique_ptr<ServerProcess> proc_;
};

// Shared servers for a whole test binary: started on first use, stopped by
// the GoogleTest environment registered in real_servers_main.cpp. Throws
// (failing the calling test) when a server cannot start.
class RealServers {
public:
    static RedisServer &redis();
    static FerretDbServer &mongo();
    static void stop_all();
};

// Kill servers registered by owners that no longer exist. Called by every
// start(); exposed for tests of the fixture itself.
int reap_orphaned_servers();

// A loopback TCP port that was free a moment ago.
int free_port();

}  // namespace aurora::testing
