#include "front_door.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <vector>

#include "log.h"

namespace aurora::host {

namespace {

bool iequals_prefix(std::string_view line, std::string_view prefix) {
    if (line.size() < prefix.size()) return false;
    for (size_t i = 0; i < prefix.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(line[i])) != prefix[i]) return false;
    }
    return true;
}

// "%00" anywhere in the request line (its target, in practice).
bool has_encoded_nul(std::string_view request_line) {
    for (size_t i = 0; i + 2 < request_line.size(); ++i) {
        if (request_line[i] == '%' && request_line[i + 1] == '0' && request_line[i + 2] == '0') return true;
    }
    return false;
}

// What lws serves: it answers any other method (TRACE, CONNECT, QUERY,
// WebDAV's, a typo) with an HTML 403. Here they get 405 in JSON with the
// methods there are: no route takes them, whatever the path.
bool served_method(std::string_view request_line) {
    std::string_view m = request_line.substr(0, request_line.find(' '));
    for (std::string_view s : {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
        if (m == s) return true;
    return false;
}

// The head was only peeked: read it off before answering, or close() with
// it unread would reset the connection and the client could lose the answer.
void consume(int fd, size_t n) {
    char sink[4096];
    while (n > 0) {
        ssize_t r = ::recv(fd, sink, std::min(n, sizeof sink), MSG_DONTWAIT);
        if (r <= 0) return;
        n -= static_cast<size_t>(r);
    }
}

void send_and_close(int fd, const char *response) {
    ssize_t ignored = ::send(fd, response, std::strlen(response), MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)ignored;  // best effort: the connection is being refused anyway
    ::close(fd);
}

}  // namespace

FrontDoor::~FrontDoor() { stop(); }

bool FrontDoor::listen(const std::string &host, int port, bool share, std::string &error) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo *res = nullptr;
    std::string service = std::to_string(port);
    if (int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &res); rc != 0) {
        error = "cannot resolve listen address '" + host + "': " + gai_strerror(rc);
        return false;
    }
    std::string last = "no address";
    for (addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last = std::strerror(errno);
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (share) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
        if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, SOMAXCONN) == 0) {
            listen_fd_ = fd;
            break;
        }
        last = std::strerror(errno);
        ::close(fd);
    }
    freeaddrinfo(res);
    if (listen_fd_ < 0) {
        error = "cannot listen on " + host + ":" + std::to_string(port) + ": " + last;
        return false;
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    getsockname(listen_fd_, reinterpret_cast<sockaddr *>(&ss), &len);
    port_ = ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6 *>(&ss)->sin6_port)
                                     : ntohs(reinterpret_cast<sockaddr_in *>(&ss)->sin_port);
    return true;
}

void FrontDoor::start(std::function<void(Arrival)> handoff, size_t max_head_bytes, std::chrono::seconds head_timeout,
                      std::function<size_t()> open_count, size_t max_connections, std::function<void()> on_refused) {
    handoff_ = std::move(handoff);
    open_count_ = std::move(open_count);
    on_refused_ = std::move(on_refused);
    max_connections_ = max_connections;
    max_head_ = max_head_bytes;
    head_timeout_ = head_timeout;
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = listen_fd_;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
    ev.data.fd = wake_fd_;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
    thread_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "front-door");
        loop();
    });
}

void FrontDoor::stop() {
    if (stopping_.exchange(true)) return;
    if (wake_fd_ >= 0) {
        uint64_t one = 1;
        ssize_t ignored = ::write(wake_fd_, &one, sizeof one);
        (void)ignored;
    }
    if (thread_.joinable()) thread_.join();
    for (auto &[fd, t] : pending_) ::close(fd);
    pending_.clear();
    for (int *fd : {&listen_fd_, &epoll_fd_, &wake_fd_}) {
        if (*fd >= 0) ::close(*fd);
        *fd = -1;
    }
}

void FrontDoor::drop(int fd) {
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    pending_.erase(fd);
}

void FrontDoor::loop() {
    std::vector<epoll_event> events(64);
    while (!stopping_.load()) {
        int n = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), resume_accept_ ? 100 : 1000);
        if (n < 0 && errno != EINTR) {
            AURORA_HLOG(AURORA_LOG_ERROR, 0, "front door: epoll_wait: %s", std::strerror(errno));
            return;
        }
        for (int i = 0; i < n; ++i) {
            int fd = events[i].data.fd;
            if (fd == wake_fd_) return;
            if (fd != listen_fd_) {
                on_readable(fd);
                continue;
            }
            for (;;) {  // accept everything that is waiting
                int c = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (c < 0) {
                    if (errno == EMFILE || errno == ENFILE) {
                        // Out of descriptors: stop watching the listener for a
                        // moment (it is level-triggered: it would spin).
                        AURORA_HLOG(AURORA_LOG_ERROR, 0, "front door: accept: %s; pausing accepts for 100 ms",
                                    std::strerror(errno));
                        epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
                        resume_accept_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
                    }
                    break;
                }
                if (max_connections_ && pending_.size() >= max_connections_) {
                    // As many heads being read as connections allowed: no room to even answer.
                    if (on_refused_) on_refused_();
                    ::close(c);
                    continue;
                }
                int one = 1;
                setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                pending_[c] = std::chrono::steady_clock::now() + head_timeout_;
                epoll_event ev{};
                ev.events = EPOLLIN | EPOLLET | EPOLLRDHUP;
                ev.data.fd = c;
                epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c, &ev);
                on_readable(c);  // the head often arrives with the connection
            }
        }
        // Heads that never completed: drop them (slowloris).
        auto now = std::chrono::steady_clock::now();
        if (resume_accept_ && now >= *resume_accept_) {
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.fd = listen_fd_;
            epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
            resume_accept_.reset();
        }
        for (auto it = pending_.begin(); it != pending_.end();) {
            if (it->second < now) {
                int fd = it->first;
                ++it;
                drop(fd);
                send_and_close(fd, "HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
            } else {
                ++it;
            }
        }
    }
}

void FrontDoor::on_readable(int fd) {
    if (!pending_.count(fd)) return;
    std::string buf(max_head_, '\0');
    ssize_t got = ::recv(fd, buf.data(), buf.size(), MSG_PEEK);
    if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        drop(fd);
        ::close(fd);
        return;
    }
    if (got < 0) return;  // spurious wake-up
    buf.resize(static_cast<size_t>(got));
    size_t end = buf.find("\r\n\r\n");
    if (end == std::string::npos) {
        if (buf.size() >= max_head_) {
            drop(fd);
            send_and_close(fd, "HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\n"
                               "content-length: 0\r\n\r\n");
        }
        return;  // wait for the rest (edge-triggered: new bytes wake us)
    }
    drop(fd);
    if (max_connections_ && open_count_ && open_count_() >= max_connections_) {
        // Answered once the head is in, so that the client reads the answer
        // instead of a reset on a request it is still sending.
        if (on_refused_) on_refused_();
        send_and_close(fd, "HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\nretry-after: 1\r\n"
                           "content-type: application/json\r\ncontent-length: 42\r\n\r\n"
                           "{\"error\":\"server at its connection limit\"}");
        return;
    }
    Arrival a;
    a.fd = fd;
    std::string_view head(buf.data(), end + 4);
    if (has_encoded_nul(head.substr(0, head.find("\r\n")))) {
        // lws would cut the path at the decoded NUL, or drop the connection
        // without a word: answer clearly instead.
        consume(fd, head.size());
        send_and_close(fd, "HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-type: application/json\r\n"
                           "content-length: 34\r\n\r\n{\"error\":\"NUL byte in the target\"}");
        return;
    }
    if (!served_method(head.substr(0, head.find("\r\n")))) {
        consume(fd, head.size());
        send_and_close(fd, "HTTP/1.1 405 Method Not Allowed\r\nconnection: close\r\n"
                           "allow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\ncontent-type: application/json\r\n"
                           "content-length: 42\r\n\r\n{\"error\":\"this method is not served here\"}");
        return;
    }
    std::string error;
    std::optional<HttpHead> parsed = parse_http_head(head, error);
    if (parsed && parsed->is_websocket_upgrade()) {
        // Consume exactly the head we peeked; what follows stays in the socket.
        std::string sink(head.size(), '\0');
        size_t done = 0;
        while (done < head.size()) {
            ssize_t r = ::recv(fd, sink.data() + done, head.size() - done, 0);
            if (r <= 0) {
                ::close(fd);
                return;
            }
            done += static_cast<size_t>(r);
        }
        a.upgrade = std::move(parsed);
    } else if (!parsed && head.size() > 4 &&
               (iequals_prefix(head, "get ") && head.find("pgrade") != std::string_view::npos)) {
        // Looks like an upgrade but does not parse: say why rather than hand lws a request it may drop.
        std::string body = "{\"error\":\"bad request head: " + error + "\"}";
        std::string resp = "HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-type: application/json\r\n"
                           "content-length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
        send_and_close(fd, resp.c_str());
        return;
    }
    handoff_(std::move(a));
}

}  // namespace aurora::host
