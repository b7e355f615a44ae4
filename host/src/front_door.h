// The front door: the host's own listening socket and the thread that
// accepts on it, peeks at each request head (MSG_PEEK), answers by itself
// what it refuses (408 a head too slow, 431 too large, 503 at
// max_connections, 400 "%00" in the request line or a head that looks like
// an upgrade but does not parse), and hands the connection to the service
// thread. There an upgrade is served by the host itself
// (Host::accept_websocket: the handshake, then frames on a libuv TCP handle:
// ws_server.cpp, ws_connection.cpp); any other connection is adopted into
// libwebsockets, which serves HTTP.
//
// Why not let lws listen: the host frames WebSockets itself (ws_frame.h
// says why), so an upgrade request never reaches lws: its head is read here,
// consumed, and handed over parsed; every other request is handed over with
// nothing consumed and lws serves it over HTTP. lws also does not set
// SO_REUSEPORT, which `workers` > 1 needs.
//
// Thread contract: the front-door thread owns the listening socket and every
// connection until handoff(); after that the service thread owns it.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>

#include "http_head.h"

namespace aurora::host {

struct Arrival {
    int fd = -1;
    // A WebSocket upgrade: its head, read off the socket (what follows it is
    // still there). Otherwise nullopt, and lws reads the request itself.
    std::optional<HttpHead> upgrade;
};

class FrontDoor {
public:
    FrontDoor() = default;
    ~FrontDoor();
    FrontDoor(const FrontDoor &) = delete;
    FrontDoor &operator=(const FrontDoor &) = delete;

    // Main thread. Binds host:port (port 0 = any) with SO_REUSEADDR, and
    // SO_REUSEPORT when `share` (workers > 1: only then, so that a second
    // host started by mistake on a taken port fails instead of silently
    // sharing it). False with `error` set.
    bool listen(const std::string &host, int port, bool share, std::string &error);
    int port() const { return port_; }

    // Starts the accept thread. `handoff` is called on that thread for each
    // connection whose head is complete; it takes ownership of the fd.
    // `open_count` (any thread) is the number of connections the service
    // thread holds: once it reaches `max_connections`, a new connection's
    // head is read and answered 503 (then closed), and `on_refused` is
    // called. Heads being read here are bounded by `max_connections` too.
    void start(std::function<void(Arrival)> handoff, size_t max_head_bytes, std::chrono::seconds head_timeout,
               std::function<size_t()> open_count, size_t max_connections, std::function<void()> on_refused);
    // Any thread. Stops accepting, closes connections not handed over, joins.
    void stop();

private:
    void loop();
    void on_readable(int fd);
    void drop(int fd);

    int listen_fd_ = -1;
    int epoll_fd_ = -1;
    int wake_fd_ = -1;
    int port_ = 0;
    size_t max_head_ = 16 * 1024;
    std::chrono::seconds head_timeout_{10};
    std::function<void(Arrival)> handoff_;
    std::function<size_t()> open_count_;
    std::function<void()> on_refused_;
    size_t max_connections_ = 0;
    std::thread thread_;
    std::atomic<bool> stopping_{false};
    // [front-door thread] connections whose head is not complete yet
    std::unordered_map<int, std::chrono::steady_clock::time_point> pending_;
    std::optional<std::chrono::steady_clock::time_point> resume_accept_;  // listener paused (EMFILE) until then
};

}  // namespace aurora::host
