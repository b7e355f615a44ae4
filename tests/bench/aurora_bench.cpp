// aurora-bench: a load generator for aurora-host, on raw epoll so that it
// stays out of the way of what it measures. One process, one thread per
// --threads, loopback only, bounded in time and connection count.
//
//   aurora-bench --scenario fanout --ports 8081,8082 --subscribers 1000
//       --publishers 10 --rate 50 --duration 10 --auth query
//
// Scenarios:
//   fanout   N subscribers in one room over R replicas, P publishers at a
//            total of T messages/s; prints deliveries/s, expected vs
//            delivered, latency percentiles (send time is inside each
//            message), and the hosts' CPU per delivery (from /proc/<pid>).
//   rooms    the chat-app shape: --connections spread over --rooms rooms
//            (connection i in room r<i % rooms>), messages from random
//            members at --rate; each reaches its room's members.
//   --ndjson asks for the "aurora.ndjson" subprotocol: messages waiting
//            together arrive in one frame, one per line.
//   connect  authenticated handshakes per second up to --connections, with
//            --window handshakes in flight.
//   idle     --connections idle connections; host RSS per connection.
//
// Auth: --auth query sends ?user=bench-N (for hosts with the probe fixture
// plugin), --auth token mints HS256 tokens with --secret and sends them as
// the "Bearer.<jwt>" subprotocol, like the web client.
#include <arpa/inet.h>
#include <fcntl.h>
#include <jwt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

uint64_t now_ns() {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count());
}

struct Options {
    std::string scenario = "fanout";
    std::string host = "127.0.0.1";
    std::vector<int> ports;
    int subscribers = 100, publishers = 1, connections = 1000;
    double rate = 100;  // total messages/s over all publishers
    double duration = 5;
    std::string auth = "query", secret;
    std::string room = "general";
    int payload = 100;  // bytes of text per message
    int window = 256;   // handshakes in flight
    int rooms = 2000;   // rooms scenario
    bool ndjson = false;  // ask for the "aurora.ndjson" subprotocol (several messages per frame)
};

[[noreturn]] void die(const std::string &why) {
    std::fprintf(stderr, "aurora-bench: %s\n", why.c_str());
    std::exit(2);
}

// ---- HTTP helpers ---------------------------------------------------------------

int tcp_connect(const std::string &host, int port, bool nonblock) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0) die(std::string("socket: ") + std::strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1) die("bad host " + host + " (loopback addresses only)");
    if (connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0 && errno != EINPROGRESS)
        die("connect " + host + ":" + std::to_string(port) + ": " + std::strerror(errno));
    return fd;
}

std::string http_get(const std::string &host, int port, const std::string &path) {
    int fd = tcp_connect(host, port, false);
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) < 0) die("send");
    std::string out;
    char buf[8192];
    for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<size_t>(n));
    close(fd);
    return out;
}

int host_pid(const Options &o, int port) {
    std::string r = http_get(o.host, port, "/health");
    size_t p = r.find("\"pid\":");
    if (p == std::string::npos) die("no pid in /health of port " + std::to_string(port));
    return std::atoi(r.c_str() + p + 6);
}

// CPU seconds (user + system) used so far by a process.
double cpu_seconds(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t close_paren = s.rfind(')');
    std::istringstream rest(s.substr(close_paren + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
        if (i == 14) utime = std::stoull(field);
        if (i == 15) stime = std::stoull(field);
    }
    return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

long rss_kb(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
    }
    return 0;
}

std::string mint_token(const Options &o, int n) {
    jwt_t *j = nullptr;
    if (jwt_new(&j) != 0) die("jwt_new");
    std::unique_ptr<jwt_t, decltype(&jwt_free)> guard(j, jwt_free);
    char uid[32];
    std::snprintf(uid, sizeof uid, "%024x", n + 1);  // a 24-hex "ObjectId"
    long now = static_cast<long>(time(nullptr));
    jwt_add_grant(j, "userId", uid);
    jwt_add_grant(j, "username", ("bench" + std::to_string(n)).c_str());
    jwt_add_grant_int(j, "iat", now);
    jwt_add_grant_int(j, "exp", now + 3600);
    jwt_set_alg(j, JWT_ALG_HS256, reinterpret_cast<const unsigned char *>(o.secret.data()), static_cast<int>(o.secret.size()));
    char *enc = jwt_encode_str(j);
    if (!enc) die("jwt_encode_str");
    std::string t(enc);
    free(enc);
    return t;
}

std::string handshake(const Options &o, int n) {
    std::string path = "/", protocols;
    if (o.auth == "query") path = "/?user=bench-" + std::to_string(n);
    if (o.ndjson) protocols = "aurora.ndjson";
    if (o.auth == "token") protocols += (protocols.empty() ? "" : ", ") + std::string("Bearer.") + mint_token(o, n);
    std::string extra = protocols.empty() ? "" : "Sec-WebSocket-Protocol: " + protocols + "\r\n";
    return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + extra + "\r\n";
}

// A masked client text frame (RFC 6455 §5.3: clients mask).
std::string client_frame(const std::string &payload) {
    std::string f;
    f += static_cast<char>(0x81);
    size_t n = payload.size();
    if (n < 126) {
        f += static_cast<char>(0x80 | n);
    } else {
        f += static_cast<char>(0x80 | 126);
        f += static_cast<char>((n >> 8) & 0xFF);
        f += static_cast<char>(n & 0xFF);
    }
    const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    f.append(reinterpret_cast<const char *>(mask), 4);
    for (size_t i = 0; i < n; ++i) f += static_cast<char>(payload[i] ^ mask[i % 4]);
    return f;
}

// ---- connections -------------------------------------------------------------------

struct Conn {
    int fd = -1;
    bool upgraded = false;
    bool subscriber = false;
    std::string in;
    uint64_t deliveries = 0;
};

struct Stats {
    std::vector<uint64_t> latency_us;  // one per delivery (bounded by the run)
    uint64_t deliveries = 0, frames = 0, errors = 0;
};

// Parses complete server frames (unmasked) from c.in; returns text payloads.
template <typename F>
void parse_frames(Conn &c, F &&on_text) {
    size_t pos = 0;
    while (c.in.size() - pos >= 2) {
        auto *p = reinterpret_cast<const unsigned char *>(c.in.data() + pos);
        uint64_t len = p[1] & 0x7F;
        size_t hdr = 2;
        if (len == 126) {
            if (c.in.size() - pos < 4) break;
            len = (static_cast<uint64_t>(p[2]) << 8) | p[3];
            hdr = 4;
        } else if (len == 127) {
            if (c.in.size() - pos < 10) break;
            len = 0;
            for (int i = 0; i < 8; ++i) len = (len << 8) | p[2 + i];
            hdr = 10;
        }
        if (c.in.size() - pos < hdr + len) break;
        if ((p[0] & 0x0F) == 0x1) {  // a text frame: one message, or several lines (aurora.ndjson)
            std::string_view payload(c.in.data() + pos + hdr, len);
            for (size_t nl; (nl = payload.find('\n')) != std::string_view::npos; payload.remove_prefix(nl + 1))
                on_text(payload.substr(0, nl));
            on_text(payload);
        }
        pos += hdr + len;
    }
    c.in.erase(0, pos);
}

// Opens n upgraded WebSocket connections, spread over the ports, with up to
// `window` handshakes in flight (non-blocking connect + epoll). Source
// addresses are spread over 127.0.0.0/8 (40,000 connections per address) so
// that more than one address's ephemeral ports can be used.
std::vector<Conn> open_connections(const Options &o, int n, int first_user, int ep) {
    std::vector<Conn> conns(static_cast<size_t>(n));
    std::vector<std::string> pending_out(static_cast<size_t>(n));
    int hs_ep = epoll_create1(EPOLL_CLOEXEC);
    int next = 0, done = 0, in_flight = 0;
    auto start_one = [&](int i) {
        Conn &c = conns[static_cast<size_t>(i)];
        c.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (c.fd < 0) die(std::string("socket: ") + std::strerror(errno));
        int one = 1;
        setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        sockaddr_in src{};
        src.sin_family = AF_INET;
        src.sin_addr.s_addr = htonl(0x7F000001u + static_cast<uint32_t>((first_user + i) / 40000));
        if (bind(c.fd, reinterpret_cast<sockaddr *>(&src), sizeof src) != 0) die(std::string("bind: ") + std::strerror(errno));
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(o.ports[static_cast<size_t>(i) % o.ports.size()]));
        inet_pton(AF_INET, o.host.c_str(), &a.sin_addr);
        if (connect(c.fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0 && errno != EINPROGRESS)
            die(std::string("connect: ") + std::strerror(errno));
        pending_out[static_cast<size_t>(i)] = handshake(o, first_user + i);
        epoll_event ev{};
        ev.events = EPOLLOUT | EPOLLIN;
        ev.data.u32 = static_cast<uint32_t>(i);
        epoll_ctl(hs_ep, EPOLL_CTL_ADD, c.fd, &ev);
        ++in_flight;
    };
    std::vector<epoll_event> events(512);
    char buf[8192];
    auto deadline = Clock::now() + std::chrono::seconds(120);
    while (done < n) {
        while (next < n && in_flight < o.window) start_one(next++);
        if (Clock::now() > deadline) die("handshakes did not finish within 120 s");
        int k = epoll_wait(hs_ep, events.data(), static_cast<int>(events.size()), 1000);
        for (int e = 0; e < k; ++e) {
            int i = static_cast<int>(events[e].data.u32);
            Conn &c = conns[static_cast<size_t>(i)];
            std::string &out = pending_out[static_cast<size_t>(i)];
            if (!out.empty() && (events[e].events & EPOLLOUT)) {
                ssize_t w = send(c.fd, out.data(), out.size(), MSG_NOSIGNAL);
                if (w < 0 && errno != EAGAIN) die(std::string("handshake send: ") + std::strerror(errno));
                if (w > 0) out.erase(0, static_cast<size_t>(w));
                if (out.empty()) {
                    epoll_event ev{};
                    ev.events = EPOLLIN;
                    ev.data.u32 = static_cast<uint32_t>(i);
                    epoll_ctl(hs_ep, EPOLL_CTL_MOD, c.fd, &ev);
                }
            }
            if (!(events[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
            ssize_t r = recv(c.fd, buf, sizeof buf, 0);
            if (r == 0 || (r < 0 && errno != EAGAIN)) die("handshake: connection closed (auth refused?)");
            if (r < 0) continue;
            c.in.append(buf, static_cast<size_t>(r));
            size_t end = c.in.find("\r\n\r\n");
            if (end == std::string::npos) continue;
            if (c.in.rfind("HTTP/1.1 101", 0) != 0) die("handshake refused: " + c.in.substr(0, c.in.find("\r\n")));
            c.in.erase(0, end + 4);
            c.upgraded = true;
            epoll_ctl(hs_ep, EPOLL_CTL_DEL, c.fd, nullptr);
            if (ep >= 0) {
                epoll_event ev{};
                ev.events = EPOLLIN;
                ev.data.u32 = static_cast<uint32_t>(i);
                epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
            }
            --in_flight;
            ++done;
        }
    }
    close(hs_ep);
    return conns;
}

double pct(std::vector<uint64_t> &v, double p) {
    if (v.empty()) return 0;
    size_t k = std::min(v.size() - 1, static_cast<size_t>(p / 100.0 * static_cast<double>(v.size())));
    std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
    return static_cast<double>(v[k]) / 1000.0;
}

void print_command(int argc, char **argv) {
    std::printf("command:");
    for (int i = 0; i < argc; ++i) std::printf(" %s", argv[i]);
    std::printf("\n");
}

int fanout(const Options &o) {
    std::vector<int> pids;
    for (int port : o.ports) pids.push_back(host_pid(o, port));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    std::vector<Conn> subs = open_connections(o, o.subscribers, 0, ep);
    std::vector<Conn> pubs = open_connections(o, o.publishers, 1000000, -1);
    // Let the automatic joins settle: a marker message from publisher 0 must
    // reach every subscriber before the clock starts.
    std::string marker = client_frame("{\"text\":\"bench-ready\"}");
    if (send(pubs[0].fd, marker.data(), marker.size(), MSG_NOSIGNAL) < 0) die("send");
    int ready = 0;
    std::vector<bool> seen(subs.size(), false);
    auto settle_deadline = Clock::now() + std::chrono::seconds(30);
    std::vector<epoll_event> events(1024);
    char buf[65536];
    while (ready < o.subscribers && Clock::now() < settle_deadline) {
        int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
        for (int i = 0; i < n; ++i) {
            Conn &c = subs[events[i].data.u32];
            ssize_t r;
            while ((r = recv(c.fd, buf, sizeof buf, 0)) > 0) c.in.append(buf, static_cast<size_t>(r));
            parse_frames(c, [&](std::string_view t) {
                if (t.find("bench-ready") != std::string_view::npos && !seen[events[i].data.u32]) {
                    seen[events[i].data.u32] = true;
                    ++ready;
                }
            });
        }
    }
    if (ready < o.subscribers) die("only " + std::to_string(ready) + " subscribers got the start marker in 30 s");

    Stats st;
    const uint64_t total = static_cast<uint64_t>(o.rate * o.duration);
    st.latency_us.reserve(std::min<uint64_t>(total * static_cast<uint64_t>(o.subscribers), 50'000'000));
    std::string pad(static_cast<size_t>(std::max(0, o.payload - 20)), 'x');
    std::vector<double> cpu0;
    for (int pid : pids) cpu0.push_back(cpu_seconds(pid));
    uint64_t sent = 0;
    const uint64_t t0 = now_ns();
    const double interval_ns = 1e9 / o.rate;
    const uint64_t end_send = t0 + static_cast<uint64_t>(o.duration * 1e9);
    uint64_t drain_until = 0;
    while (true) {
        uint64_t now = now_ns();
        // Send what is due (paced on absolute times: no drift).
        while (sent < total && static_cast<double>(now - t0) >= static_cast<double>(sent) * interval_ns) {
            std::string frame = client_frame("{\"text\":\"" + std::to_string(now_ns()) + "|" + pad + "\"}");
            Conn &p = pubs[sent % pubs.size()];
            if (send(p.fd, frame.data(), frame.size(), MSG_NOSIGNAL) < 0) ++st.errors;
            ++sent;
        }
        if (sent >= total && drain_until == 0) drain_until = now + 3'000'000'000ULL;  // 3 s to drain
        if (drain_until && (now > drain_until || st.deliveries >= total * static_cast<uint64_t>(o.subscribers))) break;
        int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 1);
        for (int i = 0; i < n; ++i) {
            Conn &c = subs[events[i].data.u32];
            ssize_t r;
            while ((r = recv(c.fd, buf, sizeof buf, 0)) > 0) c.in.append(buf, static_cast<size_t>(r));
            uint64_t at = now_ns();
            parse_frames(c, [&](std::string_view t) {
                ++st.frames;
                size_t k = t.find("\"text\":\"");
                if (k == std::string_view::npos) return;
                uint64_t sent_at = std::strtoull(t.data() + k + 8, nullptr, 10);
                if (sent_at < t0) return;  // the start marker or older
                ++st.deliveries;
                st.latency_us.push_back((at - sent_at) / 1000);
            });
        }
        // Publishers also receive the room: drain them so their queues stay small.
        for (Conn &p : pubs) {
            ssize_t r;
            while ((r = recv(p.fd, buf, sizeof buf, MSG_DONTWAIT)) > 0) {
            }
        }
        (void)end_send;
    }
    double elapsed = static_cast<double>(now_ns() - t0) / 1e9;
    double cpu = 0;
    for (size_t i = 0; i < pids.size(); ++i) cpu += cpu_seconds(pids[i]) - cpu0[i];
    uint64_t expected = sent * static_cast<uint64_t>(o.subscribers);
    std::printf("scenario fanout: %d subscribers over %zu replica(s), %d publishers, %.0f msg/s for %.1f s\n",
                o.subscribers, o.ports.size(), o.publishers, o.rate, o.duration);
    std::printf("sent %llu messages, expected %llu deliveries, delivered %llu, lost %llu (%.3f%%)\n",
                static_cast<unsigned long long>(sent), static_cast<unsigned long long>(expected),
                static_cast<unsigned long long>(st.deliveries),
                static_cast<unsigned long long>(expected > st.deliveries ? expected - st.deliveries : 0),
                expected ? 100.0 * static_cast<double>(expected - std::min(expected, st.deliveries)) / static_cast<double>(expected) : 0.0);
    std::printf("deliveries/s %.0f (over %.2f s incl. drain)\n", static_cast<double>(st.deliveries) / elapsed, elapsed);
    std::printf("latency ms: p50 %.2f p90 %.2f p99 %.2f p99.9 %.2f max %.2f\n", pct(st.latency_us, 50),
                pct(st.latency_us, 90), pct(st.latency_us, 99), pct(st.latency_us, 99.9), pct(st.latency_us, 100));
    std::printf("host cpu %.2f s over %zu process(es): %.2f us per delivery\n", cpu, pids.size(),
                st.deliveries ? cpu * 1e6 / static_cast<double>(st.deliveries) : 0.0);
    for (Conn &c : subs) close(c.fd);
    for (Conn &c : pubs) close(c.fd);
    close(ep);
    return expected == st.deliveries ? 0 : 1;
}

// Reads what is waiting on the connections epoll reports; calls on_text for
// every text frame with the receive time.
template <typename F>
void pump(int ep, std::vector<Conn> &conns, int timeout_ms, F &&on_text) {
    static std::vector<epoll_event> events(1024);
    static char buf[65536];
    int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), timeout_ms);
    for (int i = 0; i < n; ++i) {
        Conn &c = conns[events[i].data.u32];
        ssize_t r;
        while ((r = recv(c.fd, buf, sizeof buf, 0)) > 0) c.in.append(buf, static_cast<size_t>(r));
        uint64_t at = now_ns();
        parse_frames(c, [&](std::string_view t) { on_text(events[i].data.u32, t, at); });
    }
}

int rooms_scenario(const Options &o) {
    if (o.connections % o.rooms != 0) die("--connections must be a multiple of --rooms");
    std::vector<int> pids;
    for (int port : o.ports) pids.push_back(host_pid(o, port));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    std::vector<Conn> conns = open_connections(o, o.connections, 0, ep);
    auto room_of = [&](size_t i) { return "r" + std::to_string(i % static_cast<size_t>(o.rooms)); };
    for (size_t i = 0; i < conns.size(); ++i) {
        std::string f = client_frame("{\"type\":\"join\",\"room\":\"" + room_of(i) + "\"}");
        if (send(conns[i].fd, f.data(), f.size(), MSG_NOSIGNAL) < 0) die("send join");
    }
    int joined = 0;
    auto settle = Clock::now() + std::chrono::seconds(60);
    while (joined < o.connections && Clock::now() < settle)
        pump(ep, conns, 100, [&](uint32_t, std::string_view t, uint64_t) {
            if (t.find("\"type\":\"joined\"") != std::string_view::npos) ++joined;
        });
    if (joined < o.connections) die("only " + std::to_string(joined) + " joins confirmed in 60 s");

    const uint64_t total = static_cast<uint64_t>(o.rate * o.duration);
    const uint64_t per_room = static_cast<uint64_t>(o.connections / o.rooms);
    std::vector<uint64_t> lat;
    lat.reserve(total * per_room);
    uint64_t delivered = 0, sent = 0;
    std::vector<double> cpu0;
    for (int pid : pids) cpu0.push_back(cpu_seconds(pid));
    std::mt19937 rng(42);
    std::uniform_int_distribution<size_t> pick(0, conns.size() - 1);
    std::string pad(static_cast<size_t>(std::max(0, o.payload - 20)), 'x');
    const uint64_t t0 = now_ns();
    const double interval_ns = 1e9 / o.rate;
    uint64_t drain_until = 0;
    while (true) {
        uint64_t now = now_ns();
        while (sent < total && static_cast<double>(now - t0) >= static_cast<double>(sent) * interval_ns) {
            size_t from = pick(rng);
            std::string f = client_frame("{\"type\":\"message\",\"room\":\"" + room_of(from) + "\",\"text\":\"" +
                                         std::to_string(now_ns()) + "|" + pad + "\"}");
            if (send(conns[from].fd, f.data(), f.size(), MSG_NOSIGNAL) >= 0) ++sent;
        }
        if (sent >= total && drain_until == 0) drain_until = now + 3'000'000'000ULL;
        if (drain_until && (now > drain_until || delivered >= sent * per_room)) break;
        pump(ep, conns, 1, [&](uint32_t, std::string_view t, uint64_t at) {
            size_t k = t.find("\"text\":\"");
            if (k == std::string_view::npos || t.find("\"type\":\"message\"") == std::string_view::npos) return;
            uint64_t sent_at = std::strtoull(t.data() + k + 8, nullptr, 10);
            if (sent_at < t0) return;
            ++delivered;
            lat.push_back((at - sent_at) / 1000);
        });
    }
    double elapsed = static_cast<double>(now_ns() - t0) / 1e9, cpu = 0;
    for (size_t i = 0; i < pids.size(); ++i) cpu += cpu_seconds(pids[i]) - cpu0[i];
    uint64_t expected = sent * per_room;
    std::printf("scenario rooms: %d connections in %d rooms over %zu replica(s), %.0f msg/s for %.1f s\n",
                o.connections, o.rooms, o.ports.size(), o.rate, o.duration);
    std::printf("sent %llu messages, expected %llu deliveries, delivered %llu, lost %llu\n",
                static_cast<unsigned long long>(sent), static_cast<unsigned long long>(expected),
                static_cast<unsigned long long>(delivered),
                static_cast<unsigned long long>(expected > delivered ? expected - delivered : 0));
    std::printf("deliveries/s %.0f\n", static_cast<double>(delivered) / elapsed);
    std::printf("latency ms: p50 %.2f p90 %.2f p99 %.2f p99.9 %.2f max %.2f\n", pct(lat, 50), pct(lat, 90),
                pct(lat, 99), pct(lat, 99.9), pct(lat, 100));
    std::printf("host cpu %.2f s over %zu process(es): %.2f us per delivery, %.1f us per message\n", cpu,
                pids.size(), delivered ? cpu * 1e6 / static_cast<double>(delivered) : 0.0,
                sent ? cpu * 1e6 / static_cast<double>(sent) : 0.0);
    for (Conn &c : conns) close(c.fd);
    close(ep);
    return expected == delivered ? 0 : 1;
}

int connect_scenario(const Options &o) {
    auto t0 = Clock::now();
    std::vector<Conn> conns = open_connections(o, o.connections, 0, -1);
    std::chrono::duration<double> d = Clock::now() - t0;
    std::printf("scenario connect: %d authenticated handshakes (%s) in %.2f s: %.0f handshakes/s\n", o.connections,
                o.auth.c_str(), d.count(), o.connections / d.count());
    for (Conn &c : conns) close(c.fd);
    return 0;
}

// aurora_connections summed over the hosts' /metrics.
long host_connections(const Options &o) {
    long total = 0;
    for (int port : o.ports) {
        std::string m = http_get(o.host, port, "/metrics");
        size_t p = m.find("\naurora_connections ");
        if (p != std::string::npos) total += std::atol(m.c_str() + p + 20);
    }
    return total;
}

int idle_scenario(const Options &o) {
    std::vector<int> pids;
    for (int port : o.ports) pids.push_back(host_pid(o, port));
    long before = 0;
    for (int pid : pids) before += rss_kb(pid);
    std::vector<Conn> conns = open_connections(o, o.connections, 0, -1);
    // Ready to measure when the hosts count every connection (/metrics) and
    // their plugins' per-connection work has settled (RSS unchanged between
    // two probes); both bounded by a deadline.
    auto deadline = Clock::now() + std::chrono::seconds(30);
    while (host_connections(o) < o.connections) {
        if (Clock::now() > deadline) die("the hosts did not count every connection within 30 s");
        std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling /metrics
    }
    long after = -1;
    for (long prev = -2; after != prev && Clock::now() < deadline;) {
        prev = after;
        if (prev >= 0) std::this_thread::sleep_for(std::chrono::milliseconds(200));  // between two RSS probes
        after = 0;
        for (int pid : pids) after += rss_kb(pid);
    }
    std::printf("scenario idle: %d connections, host RSS %ld KB -> %ld KB: %.2f KB per connection\n", o.connections,
                before, after, static_cast<double>(after - before) / o.connections);
    for (Conn &c : conns) close(c.fd);
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) die("missing value for " + a);
            return argv[++i];
        };
        if (a == "--scenario") o.scenario = next();
        else if (a == "--host") o.host = next();
        else if (a == "--ports") {
            std::stringstream ss(next());
            for (std::string p; std::getline(ss, p, ',');) o.ports.push_back(std::stoi(p));
        } else if (a == "--subscribers") o.subscribers = std::stoi(next());
        else if (a == "--publishers") o.publishers = std::stoi(next());
        else if (a == "--connections") o.connections = std::stoi(next());
        else if (a == "--rate") o.rate = std::stod(next());
        else if (a == "--duration") o.duration = std::stod(next());
        else if (a == "--auth") o.auth = next();
        else if (a == "--secret") o.secret = next();
        else if (a == "--payload") o.payload = std::stoi(next());
        else if (a == "--window") o.window = std::max(1, std::stoi(next()));
        else if (a == "--rooms") o.rooms = std::max(1, std::stoi(next()));
        else if (a == "--ndjson") o.ndjson = true;
        else die("unknown option " + a + " (see the top of tests/bench/aurora_bench.cpp)");
    }
    if (o.ports.empty()) die("--ports is required");
    if (o.host.rfind("127.", 0) != 0) die("loopback addresses only (127.0.0.0/8)");
    if (o.duration <= 0 || o.duration > 600 || o.rate <= 0) die("--duration must be in (0, 600] and --rate > 0");
    if (o.subscribers > 200000 || o.connections > 200000) die("at most 200000 connections");
    if (o.auth == "token" && o.secret.empty()) die("--auth token needs --secret");
    print_command(argc, argv);
    if (o.scenario == "fanout") return fanout(o);
    if (o.scenario == "connect") return connect_scenario(o);
    if (o.scenario == "rooms") return rooms_scenario(o);
    if (o.scenario == "idle") return idle_scenario(o);
    die("unknown scenario " + o.scenario);
}
