// aurora-bench: a load generator for aurora-host, on raw epoll so that it
// stays out of the way of what it measures. One process; fanout reads its
// subscribers on --threads N threads (default 1); loopback only, bounded in
// time and connection count.
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
//   idle     --connections idle connections; host RSS per connection
//            (--processes N: held by N processes, for descriptor limits).
//   --deflate offers permessage-deflate (as browsers do) and inflates what
//            comes compressed; fanout then reports wire bytes per delivery,
//            and idle has each connection send one compressed message (so a
//            host keeping client contexts allocates its inflaters).
//   --lorem  fanout pads messages with words, compressible like chat text,
//            instead of 'x' (which compresses unrealistically well).
//
// Auth: --auth query sends ?user=bench-N (for hosts with the probe fixture
// plugin), --auth token mints HS256 tokens with --secret and sends them as
// the "Bearer.<jwt>" subprotocol, like the web client.
//
// Results: the human-readable lines go to stdout, always. --json PATH also
// appends one JSON object per run, on one line, to PATH:
//   {"scenario", "time_utc", "params": {every option}, "machine": {"nproc",
//    "cpu_model", "kernel", "mem_total_kb"}, "git_revision", "command",
//    "results": {every number printed}, "latency_cdf": [[ms, fraction], ...],
//    "exit_status"}
// The revision comes from --git-rev, else $AURORA_GIT_REV, else "unknown"
// (tests/bench/run_bench.py passes `git rev-parse --short HEAD`, "-dirty"
// when the tree has changes). latency_cdf has ~100 points of the sorted
// per-delivery latencies (denser in the tail), handshake latencies for
// connect; [] for idle.
// --secret's value is left out of the JSON.
#include <arpa/inet.h>
#include <fcntl.h>
#include <jwt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <initializer_list>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
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
    int processes = 1;  // idle: connections held by this many processes (descriptor limits)
    double rate = 100;  // total messages/s over all publishers
    double duration = 5;
    std::string auth = "query", secret;
    std::string room = "general";
    int payload = 100;  // bytes of text per message
    int window = 256;   // handshakes in flight
    int threads = 1;    // fanout: receiving threads (subscribers split between them)
    int rooms = 2000;   // rooms scenario
    bool ndjson = false;  // ask for the "aurora.ndjson" subprotocol (several messages per frame)
    bool deflate = false;  // offer permessage-deflate as browsers do; inflate what comes compressed
    bool lorem = false;    // fanout: pad messages with words (compressible like chat) instead of 'x'
    // --peer centrifugo: the same scenarios against Centrifugo v6 (JSON
    // protocol): connect with a token (HS256, "sub"), subscribe, publish
    // from clients; a delivery is a push of the publication. Host CPU comes
    // from --pids (Centrifugo's /health has no pid).
    std::string peer = "aurora";
    std::vector<int> pids;
    std::string json_path;  // --json: append one JSON object per run here
    std::string git_rev;    // --git-rev, else $AURORA_GIT_REV, else "unknown"
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

int host_pid(const Options &o, int port);
// The servers' pids, for their CPU time: --pids, else each port's /health.
std::vector<int> server_pids(const Options &o) {
    if (!o.pids.empty()) return o.pids;
    std::vector<int> pids;
    for (int port : o.ports) pids.push_back(host_pid(o, port));
    return pids;
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

// An HS256 token with these string claims plus "iat" and "exp" (an hour).
std::string sign_token(const Options &o, std::initializer_list<std::pair<const char *, std::string>> claims) {
    jwt_t *j = nullptr;
    if (jwt_new(&j) != 0) die("jwt_new");
    std::unique_ptr<jwt_t, decltype(&jwt_free)> guard(j, jwt_free);
    long now = static_cast<long>(time(nullptr));
    for (const auto &[name, value] : claims) jwt_add_grant(j, name, value.c_str());
    jwt_add_grant_int(j, "iat", now);
    jwt_add_grant_int(j, "exp", now + 3600);
    jwt_set_alg(j, JWT_ALG_HS256, reinterpret_cast<const unsigned char *>(o.secret.data()), static_cast<int>(o.secret.size()));
    char *enc = jwt_encode_str(j);
    if (!enc) die("jwt_encode_str");
    std::string t(enc);
    free(enc);
    return t;
}

// The auth plugin's token: a 24-hex "ObjectId" and a username.
std::string mint_token(const Options &o, int n) {
    char uid[32];
    std::snprintf(uid, sizeof uid, "%024x", n + 1);
    return sign_token(o, {{"userId", uid}, {"username", "bench" + std::to_string(n)}});
}

// Centrifugo's connection token: the user in "sub".
std::string centrifugo_token(const Options &o, int n) { return sign_token(o, {{"sub", "bench" + std::to_string(n)}}); }

bool centrifugo(const Options &o) { return o.peer == "centrifugo"; }

std::string handshake(const Options &o, int n) {
    if (centrifugo(o)) {
        std::string extra = o.deflate ? "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" : "";
        return "GET /connection/websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + extra + "\r\n";
    }
    std::string path = "/", protocols;
    if (o.auth == "query") path = "/?user=bench-" + std::to_string(n);
    if (o.ndjson) protocols = "aurora.ndjson";
    if (o.auth == "token") protocols += (protocols.empty() ? "" : ", ") + std::string("Bearer.") + mint_token(o, n);
    std::string extra = protocols.empty() ? "" : "Sec-WebSocket-Protocol: " + protocols + "\r\n";
    if (o.deflate) extra += "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";
    return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + extra + "\r\n";
}

// A masked client frame, text unless told (RFC 6455 §5.3: clients mask).
std::string client_frame(std::string_view payload, unsigned char opcode = 0x1) {
    std::string f;
    f += static_cast<char>(0x80 | opcode);
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

// The text after the send time: --payload bytes in all, 'x's or (--lorem) words.
std::string make_pad(const Options &o) {
    const size_t n = static_cast<size_t>(std::max(0, o.payload - 20));
    if (!o.lorem) return std::string(n, 'x');
    static const char *const kWords[] = {"the", "meeting", "moved", "to", "three", "o'clock", "can", "you",
                                         "send", "me", "notes", "from", "yesterday", "thanks", "see", "soon",
                                         "deploy", "is", "green", "again", "lunch", "at", "noon", "ok"};
    std::string pad;
    for (size_t i = 0; pad.size() < n; ++i) pad += std::string(kWords[(i * 7 + i / 5) % std::size(kWords)]) + " ";
    pad.resize(n);
    return pad;
}

// ---- connections -------------------------------------------------------------------

struct Conn {
    int fd = -1;
    uint64_t wire_bytes = 0;  // payload bytes of the text frames read, as they came (compressed or not)
    bool upgraded = false;
    bool subscriber = false;
    std::string in;
    uint64_t deliveries = 0;
    Clock::time_point started{};  // connect() called
    uint64_t handshake_us = 0;    // connect() -> 101 read
    uint32_t next_id = 1;         // --peer centrifugo: command ids
};

// What a client sends, for each peer. Aurora: the seed's frames. Centrifugo:
// its commands, each with an id (the replies are read and dropped).
std::string connect_command(const Options &o, Conn &c, int n) {
    return "{\"id\":" + std::to_string(c.next_id++) + ",\"connect\":{\"token\":\"" + centrifugo_token(o, n) + "\"}}";
}
std::string join_command(const Options &o, Conn &c, const std::string &room) {
    if (centrifugo(o)) return "{\"id\":" + std::to_string(c.next_id++) + ",\"subscribe\":{\"channel\":\"" + room + "\"}}";
    return "{\"type\":\"join\",\"room\":\"" + room + "\"}";
}
bool is_join_answer(const Options &o, std::string_view t) {
    return centrifugo(o) ? t.find("\"subscribe\":") != std::string_view::npos
                         : t.find("\"type\":\"joined\"") != std::string_view::npos;
}
// `text` is already JSON-safe (digits, '|', the pad). `typed`: the rooms
// scenario's {"type":"message","room":...}; else the seed's plain {"text"}.
std::string message_command(const Options &o, Conn &c, const std::string &room, const std::string &text, bool typed) {
    if (centrifugo(o))
        return "{\"id\":" + std::to_string(c.next_id++) + ",\"publish\":{\"channel\":\"" + room +
               "\",\"data\":{\"text\":\"" + text + "\"}}}";
    if (typed) return "{\"type\":\"message\",\"room\":\"" + room + "\",\"text\":\"" + text + "\"}";
    return "{\"text\":\"" + text + "\"}";
}
bool is_delivery(const Options &o, std::string_view t) {
    return centrifugo(o) ? t.find("\"pub\":") != std::string_view::npos
                         : t.find("\"type\":\"message\"") != std::string_view::npos;
}

struct Stats {
    std::vector<uint64_t> latency_us;  // one per delivery (bounded by the run)
    uint64_t deliveries = 0, frames = 0, errors = 0;
};

// permessage-deflate, client side (RFC 7692 §7.2): the host sends
// server_no_context_takeover, so each message inflates on its own. One
// stream per thread, reset per message; the result lives until the next call.
std::string_view inflate_message(std::string_view in) {
    struct Stream {
        z_stream zs{};
        Stream() {
            if (inflateInit2(&zs, -15) != Z_OK) die("inflateInit2 failed");
        }
        ~Stream() { inflateEnd(&zs); }
    };
    thread_local Stream s;
    thread_local std::string out;
    static const unsigned char kTail[4] = {0, 0, 0xFF, 0xFF};
    inflateReset(&s.zs);
    out.clear();
    char chunk[16384];
    for (std::string_view part : {in, std::string_view(reinterpret_cast<const char *>(kTail), 4)}) {
        s.zs.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(part.data()));
        s.zs.avail_in = static_cast<uInt>(part.size());
        do {
            s.zs.next_out = reinterpret_cast<Bytef *>(chunk);
            s.zs.avail_out = sizeof chunk;
            int rc = inflate(&s.zs, Z_SYNC_FLUSH);
            if (rc != Z_OK && rc != Z_BUF_ERROR && rc != Z_STREAM_END) die("a compressed frame does not inflate");
            out.append(chunk, sizeof chunk - s.zs.avail_out);
        } while (s.zs.avail_out == 0);
    }
    return out;
}

// A message compressed as a client would (no context kept), for a frame with RSV1.
std::string deflate_message(std::string_view in) {
    z_stream zs{};
    if (deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) die("deflateInit2 failed");
    std::string out(deflateBound(&zs, in.size()) + 16, '\0');
    zs.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(in.data()));
    zs.avail_in = static_cast<uInt>(in.size());
    zs.next_out = reinterpret_cast<Bytef *>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    if (deflate(&zs, Z_SYNC_FLUSH) != Z_OK) die("deflate failed");
    out.resize(out.size() - zs.avail_out - 4);  // without 00 00 FF FF
    deflateEnd(&zs);
    return out;
}

// Parses complete server frames (unmasked) from c.in; returns text payloads.
// Answers pings: the host closes a connection that leaves its heartbeat ping
// unanswered (heartbeat.timeout_s), which would cut a long run's subscribers.
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
            c.wire_bytes += len;
            if (p[0] & 0x40) payload = inflate_message(payload);  // RSV1: permessage-deflate
            auto one = [&](std::string_view t) {
                if (t == "{}") {  // Centrifugo's ping: answered with a pong, or it disconnects
                    std::string pong = client_frame("{}");
                    (void)send(c.fd, pong.data(), pong.size(), MSG_NOSIGNAL);
                    return;
                }
                on_text(t);
            };
            for (size_t nl; (nl = payload.find('\n')) != std::string_view::npos; payload.remove_prefix(nl + 1))
                one(payload.substr(0, nl));
            one(payload);
        } else if ((p[0] & 0x0F) == 0x9) {
            std::string pong = client_frame(std::string_view(c.in.data() + pos + hdr, len), 0xA);
            (void)send(c.fd, pong.data(), pong.size(), MSG_NOSIGNAL);  // a lost pong shows as lost deliveries
        }
        pos += hdr + len;
    }
    c.in.erase(0, pos);
}

// One recv into c.in: level-triggered epoll reports what is left again, so
// there is no second call just to hear EAGAIN. False at EOF or on an error.
bool read_some(Conn &c, char *buf, size_t size) {
    ssize_t r = recv(c.fd, buf, size, 0);
    if (r > 0) c.in.append(buf, static_cast<size_t>(r));
    return r > 0 || (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR));
}

// Reads what is waiting and drops it (pings are answered by parse_frames).
void read_and_drop(Conn &c, char *buf, size_t size) {
    if (read_some(c, buf, size)) parse_frames(c, [](std::string_view) {});
}

// A fanout delivery: the send time (ns) leads the text. Frames sent before
// the clock started (the start marker) are not counted.
void count_delivery(Stats &st, std::string_view t, uint64_t at, uint64_t t0) {
    ++st.frames;
    size_t k = t.find("\"text\":\"");
    if (k == std::string_view::npos) return;
    uint64_t sent_at = std::strtoull(t.data() + k + 8, nullptr, 10);
    if (sent_at < t0) return;
    ++st.deliveries;
    st.latency_us.push_back((at - sent_at) / 1000);
}

// Opens n upgraded WebSocket connections, spread over the ports, with up to
// `window` handshakes in flight (non-blocking connect + epoll). Source
// addresses are spread over 127.0.0.0/8, 1,000 connections per address: the
// kernel looks for a free source port per connect() by walking the ports in
// use from that address (__inet_hash_connect), which with 18,000 on one
// address took most of the generator's time and capped it near 3,000/s.
std::vector<Conn> open_connections(const Options &o, int n, int first_user, int ep) {
    std::vector<Conn> conns(static_cast<size_t>(n));
    std::vector<std::string> pending_out(static_cast<size_t>(n));
    int hs_ep = epoll_create1(EPOLL_CLOEXEC);
    int next = 0, done = 0, in_flight = 0;
    auto start_one = [&](int i) {
        Conn &c = conns[static_cast<size_t>(i)];
        c.started = Clock::now();
        c.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (c.fd < 0) die(std::string("socket: ") + std::strerror(errno));
        int one = 1;
        setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        // The port is picked at connect() (4-tuple unique, TIME_WAIT reusable
        // on loopback), not at bind(), which would refuse ports that earlier
        // runs left in TIME_WAIT; each run also starts at another address.
        setsockopt(c.fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        static const uint32_t run_base = 0x7F000001u + static_cast<uint32_t>(getpid() % 4096) * 256u;
        sockaddr_in src{};
        src.sin_family = AF_INET;
        src.sin_addr.s_addr = htonl(run_base + static_cast<uint32_t>((first_user + i) / 1000));
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
            if (c.upgraded) {  // open already: read and drop what it is sent meanwhile (see drain_idle)
                read_and_drop(c, buf, sizeof buf);
                continue;
            }
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
            if (!read_some(c, buf, sizeof buf)) die("handshake: connection closed (auth refused?)");
            size_t end = c.in.find("\r\n\r\n");
            if (end == std::string::npos) continue;
            if (c.in.rfind("HTTP/1.1 101", 0) != 0) die("handshake refused: " + c.in.substr(0, c.in.find("\r\n")));
            c.in.erase(0, end + 4);
            c.upgraded = true;
            c.handshake_us = static_cast<uint64_t>(
                std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - c.started).count());
            if (centrifugo(o)) {  // its connect command comes first; the reply is read and dropped
                std::string f = client_frame(connect_command(o, c, first_user + i));
                if (send(c.fd, f.data(), f.size(), MSG_NOSIGNAL) < 0) die("send connect");
            }
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.u32 = static_cast<uint32_t>(i);
            epoll_ctl(hs_ep, EPOLL_CTL_MOD, c.fd, &ev);  // stays here (drained) until all are open
            --in_flight;
            ++done;
        }
    }
    close(hs_ep);
    for (size_t i = 0; i < conns.size() && ep >= 0; ++i) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u32 = static_cast<uint32_t>(i);
        epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
    }
    return conns;
}

void print_command(int argc, char **argv) {
    std::printf("command:");
    for (int i = 0; i < argc; ++i) std::printf(" %s", argv[i]);
    std::printf("\n");
}

// ---- results: percentiles, CDF, JSON ------------------------------------------------

// Length of the well-formed UTF-8 sequence starting at s[i] (RFC 3629: no
// overlong forms, no surrogates, at most U+10FFFF), or 0.
size_t utf8_sequence(std::string_view s, size_t i) {
    auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char c = byte(i);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return 0;
    uint32_t cp = n == 1 ? c : (c & (0x7Fu >> n));
    for (size_t k = 1; k < n; ++k) {
        if ((byte(i + k) & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (byte(i + k) & 0x3Fu);
    }
    static constexpr uint32_t kMinCodePoint[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMinCodePoint[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

// A JSON string (RFC 8259 §7): quote, backslash and control characters
// escaped; well-formed UTF-8 kept as is; any other byte written as the
// Latin-1 character of that value, so the output is always valid JSON.
std::string json_string(std::string_view s) {
    std::string out = "\"";
    for (size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        const size_t n = utf8_sequence(s, i);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c < 0x20 || c == 0x7F || n == 0) {
            char esc[8];
            std::snprintf(esc, sizeof esc, "\\u%04x", static_cast<unsigned>(c));
            out += esc;
        } else {
            out.append(s.substr(i, n));
            i += n;
            continue;
        }
        ++i;
    }
    return out + "\"";
}

// The shortest text that reads back as the same double; null for NaN and
// infinities, which JSON cannot hold.
std::string json_number(double v) {
    if (!std::isfinite(v)) return "null";
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
}

// One JSON object, built field by field (distinct names per type, so that a
// string literal never lands in the bool overload).
class JsonObject {
public:
    JsonObject &raw(std::string_view key, std::string_view json) {
        out_ += out_.size() > 1 ? "," : "";
        out_ += json_string(key);
        out_ += ':';
        out_ += json;
        return *this;
    }
    JsonObject &str(std::string_view key, std::string_view v) { return raw(key, json_string(v)); }
    JsonObject &num(std::string_view key, double v) { return raw(key, json_number(v)); }
    JsonObject &integer(std::string_view key, int64_t v) { return raw(key, std::to_string(v)); }
    JsonObject &uint(std::string_view key, uint64_t v) { return raw(key, std::to_string(v)); }
    JsonObject &flag(std::string_view key, bool v) { return raw(key, v ? "true" : "false"); }
    std::string done() const { return out_ + "}"; }

private:
    std::string out_ = "{";
};

// What one scenario measured, for --json: every number it printed, and its
// per-delivery (or, for connect, per-handshake) latencies in µs (sorted; empty for idle).
struct Run {
    JsonObject results;
    std::vector<uint64_t> latency_us;
};

// Latency percentiles in ms. Sorts `us`; index p/100 * n as before, so the
// printed numbers are the ones nth_element gave.
struct Latency {
    double p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0;
};

Latency summarize(std::vector<uint64_t> &us) {
    std::sort(us.begin(), us.end());
    auto at = [&](double p) {
        if (us.empty()) return 0.0;
        size_t k = std::min(us.size() - 1, static_cast<size_t>(p / 100.0 * static_cast<double>(us.size())));
        return static_cast<double>(us[k]) / 1000.0;
    };
    return {at(50), at(90), at(99), at(99.9), at(100)};
}

void add_latency(JsonObject &results, const Latency &l) {
    results.num("p50_ms", l.p50).num("p90_ms", l.p90).num("p99_ms", l.p99).num("p99_9_ms", l.p999).num("max_ms", l.max);
}

// ~100 points [ms, fraction of deliveries at or under it] of the empirical
// CDF of sorted latencies (µs): the minimum, 80 evenly spaced fractions, 21
// log-spaced from 0.99 to 0.9999 (where a tail shows); the last is [max, 1].
std::string cdf_json(const std::vector<uint64_t> &sorted) {
    if (sorted.empty()) return "[]";
    const double n = static_cast<double>(sorted.size());
    auto index_of = [&](double q) {
        return std::min(sorted.size(), static_cast<size_t>(std::max(1.0, std::ceil(q * n)))) - 1;
    };
    std::vector<size_t> idx{0};
    for (int k = 1; k <= 80; ++k) idx.push_back(index_of(k / 80.0));
    for (int j = 0; j <= 20; ++j) idx.push_back(index_of(1.0 - std::pow(10.0, -(2.0 + j / 10.0))));
    std::sort(idx.begin(), idx.end());
    idx.erase(std::unique(idx.begin(), idx.end()), idx.end());
    std::string out = "[";
    for (size_t i : idx) {
        out += out.size() > 1 ? ",[" : "[";
        out += json_number(static_cast<double>(sorted[i]) / 1000.0) + "," +
               json_number(static_cast<double>(i + 1) / n) + "]";
    }
    return out + "]";
}

std::string params_json(const Options &o) {
    std::string ports = "[";
    for (size_t i = 0; i < o.ports.size(); ++i) ports += (i ? "," : "") + std::to_string(o.ports[i]);
    ports += "]";
    return JsonObject()
        .str("scenario", o.scenario)
        .str("host", o.host)
        .raw("ports", ports)
        .uint("replicas", o.ports.size())
        .integer("subscribers", o.subscribers)
        .integer("publishers", o.publishers)
        .integer("connections", o.connections)
        .num("rate", o.rate)
        .num("duration", o.duration)
        .str("auth", o.auth)
        .flag("secret_set", !o.secret.empty())
        .integer("payload", o.payload)
        .integer("window", o.window)
        .integer("processes", o.processes)
        .integer("threads", o.threads)
        .integer("rooms", o.rooms)
        .flag("ndjson", o.ndjson)
        .str("peer", o.peer)
        .done();
}

std::string machine_json() {
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    // Like nproc(1): the CPUs this process may run on.
    const long nproc = sched_getaffinity(0, sizeof cpus, &cpus) == 0 ? CPU_COUNT(&cpus) : sysconf(_SC_NPROCESSORS_ONLN);
    std::string model = "unknown";
    std::ifstream cpuinfo("/proc/cpuinfo");
    for (std::string line; std::getline(cpuinfo, line);) {
        size_t colon = line.find(':');
        if (line.rfind("model name", 0) == 0 && colon != std::string::npos) {
            model = line.substr(std::min(line.size(), line.find_first_not_of(" \t", colon + 1)));
            break;
        }
    }
    long mem_kb = 0;
    std::ifstream meminfo("/proc/meminfo");
    for (std::string line; std::getline(meminfo, line);) {
        if (line.rfind("MemTotal:", 0) == 0) mem_kb = std::atol(line.c_str() + 9);
    }
    utsname u{};
    std::string kernel = uname(&u) == 0 ? std::string(u.sysname) + " " + u.release + " " + u.machine : "unknown";
    return JsonObject()
        .integer("nproc", nproc)
        .str("cpu_model", model)
        .str("kernel", kernel)
        .integer("mem_total_kb", mem_kb)
        .done();
}

// The command line, as print_command shows it but without --secret's value.
std::string command_text(int argc, char **argv) {
    std::string out;
    for (int i = 0; i < argc; ++i) {
        bool hidden = i > 0 && std::string_view(argv[i - 1]) == "--secret";
        out += (i ? " " : "") + std::string(hidden ? "(hidden)" : argv[i]);
    }
    return out;
}

std::string utc_now() {
    time_t t = time(nullptr);
    tm g{};
    gmtime_r(&t, &g);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &g);
    return buf;
}

// Appends `line` with one write(2) on an O_APPEND descriptor, so that lines
// from concurrent runs do not interleave.
void append_line(int fd, const std::string &path, const std::string &line) {
    for (size_t off = 0; off < line.size();) {
        ssize_t w = write(fd, line.data() + off, line.size() - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) die("--json " + path + ": " + std::strerror(errno));
        off += static_cast<size_t>(w);
    }
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
        read_some(c, buf, sizeof buf);
        uint64_t at = now_ns();
        parse_frames(c, [&](std::string_view t) { on_text(events[i].data.u32, t, at); });
    }
}

// Joins conns[i] to room_of(i) and waits for every answer (60 s at most).
template <typename R>
void join_all(const Options &o, int ep, std::vector<Conn> &conns, R &&room_of) {
    for (size_t i = 0; i < conns.size(); ++i) {
        std::string f = client_frame(join_command(o, conns[i], room_of(i)));
        if (send(conns[i].fd, f.data(), f.size(), MSG_NOSIGNAL) < 0) die("send join");
    }
    size_t joined = 0;
    auto settle = Clock::now() + std::chrono::seconds(60);
    while (joined < conns.size() && Clock::now() < settle)
        pump(ep, conns, 100, [&](uint32_t, std::string_view t, uint64_t) { joined += is_join_answer(o, t); });
    if (joined < conns.size()) die("only " + std::to_string(joined) + " joins confirmed in 60 s");
}

int fanout(const Options &o, Run &run) {
    std::vector<int> pids = server_pids(o);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    std::vector<Conn> subs = open_connections(o, o.subscribers, 0, ep);
    std::vector<Conn> pubs = open_connections(o, o.publishers, 1000000, -1);
    if (centrifugo(o)) {  // no automatic join: every client subscribes (publishers too: the channel allows
                          // publishing to its subscribers)
        join_all(o, ep, subs, [&](size_t) { return o.room; });
        int pep = epoll_create1(EPOLL_CLOEXEC);
        for (size_t j = 0; j < pubs.size(); ++j) {
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.u32 = static_cast<uint32_t>(j);
            epoll_ctl(pep, EPOLL_CTL_ADD, pubs[j].fd, &ev);
        }
        join_all(o, pep, pubs, [&](size_t) { return o.room; });
        for (Conn &p : pubs) epoll_ctl(pep, EPOLL_CTL_DEL, p.fd, nullptr);
        close(pep);
    }
    // Let the automatic joins settle: a marker message from publisher 0 must
    // reach every subscriber before the clock starts.
    std::string marker = client_frame(message_command(o, pubs[0], o.room, "bench-ready", false));
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
            read_some(c, buf, sizeof buf);
            parse_frames(c, [&](std::string_view t) {
                if (t.find("bench-ready") != std::string_view::npos && !seen[events[i].data.u32]) {
                    seen[events[i].data.u32] = true;
                    ++ready;
                }
            });
        }
    }
    if (ready < o.subscribers) die("only " + std::to_string(ready) + " subscribers got the start marker in 30 s");
    for (Conn &c : subs) c.wire_bytes = 0;  // count from the clock's start

    // --threads N: subscribers i with i % N == t are read by thread t, each
    // from its own epoll set; thread 0 is this one (it also sends).
    const int nthreads = std::min(o.threads, std::max(1, o.subscribers));
    std::vector<int> eps{ep};
    for (int t = 1; t < nthreads; ++t) eps.push_back(epoll_create1(EPOLL_CLOEXEC));
    for (size_t i = 0; i < subs.size(); ++i) {
        int t = static_cast<int>(i % static_cast<size_t>(nthreads));
        if (t == 0) continue;
        epoll_ctl(ep, EPOLL_CTL_DEL, subs[i].fd, nullptr);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u32 = static_cast<uint32_t>(i);
        epoll_ctl(eps[static_cast<size_t>(t)], EPOLL_CTL_ADD, subs[i].fd, &ev);
    }
    // Publishers also receive the room: read them from the same set (index
    // subs.size() + j) so their queues stay small and their pings answered.
    for (size_t j = 0; j < pubs.size(); ++j) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u32 = static_cast<uint32_t>(subs.size() + j);
        epoll_ctl(ep, EPOLL_CTL_ADD, pubs[j].fd, &ev);
    }
    Stats st;
    const uint64_t total = static_cast<uint64_t>(o.rate * o.duration);
    st.latency_us.reserve(std::min<uint64_t>(total * static_cast<uint64_t>(o.subscribers), 50'000'000));
    const std::string pad = make_pad(o);
    std::vector<double> cpu0;
    for (int pid : pids) cpu0.push_back(cpu_seconds(pid));
    uint64_t sent = 0;
    const uint64_t t0 = now_ns();
    std::atomic<uint64_t> delivered_all{0};
    std::atomic<bool> stop{false};
    std::vector<Stats> thread_stats(static_cast<size_t>(nthreads));
    std::vector<std::thread> readers;
    for (int t = 1; t < nthreads; ++t) {
        readers.emplace_back([&, t] {
            Stats &ts = thread_stats[static_cast<size_t>(t)];
            std::vector<epoll_event> evs(1024);
            std::vector<char> rb(65536);
            while (!stop.load(std::memory_order_relaxed)) {
                int k = epoll_wait(eps[static_cast<size_t>(t)], evs.data(), static_cast<int>(evs.size()), 5);
                for (int e = 0; e < k; ++e) {
                    Conn &c = subs[evs[e].data.u32];
                    read_some(c, rb.data(), rb.size());
                    uint64_t at = now_ns(), before = ts.deliveries;
                    parse_frames(c, [&](std::string_view txt) { count_delivery(ts, txt, at, t0); });
                    delivered_all.fetch_add(ts.deliveries - before, std::memory_order_relaxed);
                }
            }
        });
    }
    const double interval_ns = 1e9 / o.rate;
    const uint64_t end_send = t0 + static_cast<uint64_t>(o.duration * 1e9);
    uint64_t drain_until = 0;
    while (true) {
        uint64_t now = now_ns();
        // Send what is due (paced on absolute times: no drift).
        while (sent < total && static_cast<double>(now - t0) >= static_cast<double>(sent) * interval_ns) {
            Conn &p = pubs[sent % pubs.size()];
            std::string frame = client_frame(message_command(o, p, o.room, std::to_string(now_ns()) + "|" + pad, false));
            if (send(p.fd, frame.data(), frame.size(), MSG_NOSIGNAL) < 0) ++st.errors;
            ++sent;
        }
        if (sent >= total && drain_until == 0) drain_until = now + 3'000'000'000ULL;  // 3 s to drain
        if (drain_until && (now > drain_until || st.deliveries + delivered_all.load(std::memory_order_relaxed) >=
                                                    total * static_cast<uint64_t>(o.subscribers)))
            break;
        int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 1);
        for (int i = 0; i < n; ++i) {
            const uint32_t idx = events[i].data.u32;
            if (idx >= subs.size()) {
                read_and_drop(pubs[idx - subs.size()], buf, sizeof buf);
                continue;
            }
            Conn &c = subs[idx];
            read_some(c, buf, sizeof buf);
            uint64_t at = now_ns();
            parse_frames(c, [&](std::string_view t) { count_delivery(st, t, at, t0); });
        }
        (void)end_send;
    }
    stop = true;
    for (std::thread &r : readers) r.join();
    for (int t = 1; t < nthreads; ++t) {
        Stats &ts = thread_stats[static_cast<size_t>(t)];
        st.frames += ts.frames;
        st.deliveries += ts.deliveries;
        st.latency_us.insert(st.latency_us.end(), ts.latency_us.begin(), ts.latency_us.end());
        close(eps[static_cast<size_t>(t)]);
    }
    double elapsed = static_cast<double>(now_ns() - t0) / 1e9;
    double cpu = 0;
    for (size_t i = 0; i < pids.size(); ++i) cpu += cpu_seconds(pids[i]) - cpu0[i];
    const uint64_t expected = sent * static_cast<uint64_t>(o.subscribers);
    const uint64_t lost = expected > st.deliveries ? expected - st.deliveries : 0;
    const double lost_pct = expected ? 100.0 * static_cast<double>(lost) / static_cast<double>(expected) : 0.0;
    const double per_s = static_cast<double>(st.deliveries) / elapsed;
    const double us_per_delivery = st.deliveries ? cpu * 1e6 / static_cast<double>(st.deliveries) : 0.0;
    const Latency l = summarize(st.latency_us);
    uint64_t wire = 0;
    for (const Conn &c : subs) wire += c.wire_bytes;
    const double wire_per_delivery = st.deliveries ? static_cast<double>(wire) / static_cast<double>(st.deliveries) : 0.0;
    std::printf("scenario fanout: %d subscribers over %zu replica(s), %d publishers, %.0f msg/s for %.1f s\n",
                o.subscribers, o.ports.size(), o.publishers, o.rate, o.duration);
    std::printf("sent %llu messages, expected %llu deliveries, delivered %llu, lost %llu (%.3f%%)\n",
                static_cast<unsigned long long>(sent), static_cast<unsigned long long>(expected),
                static_cast<unsigned long long>(st.deliveries), static_cast<unsigned long long>(lost), lost_pct);
    std::printf("deliveries/s %.0f (over %.2f s incl. drain)\n", per_s, elapsed);
    std::printf("latency ms: p50 %.2f p90 %.2f p99 %.2f p99.9 %.2f max %.2f\n", l.p50, l.p90, l.p99, l.p999, l.max);
    std::printf("host cpu %.2f s over %zu process(es): %.2f us per delivery\n", cpu, pids.size(), us_per_delivery);
    std::printf("wire: %.1f payload bytes per delivery (%s)\n", wire_per_delivery,
                o.deflate ? "permessage-deflate offered" : "uncompressed");
    run.results.num("wire_bytes_per_delivery", wire_per_delivery).uint("deflate", o.deflate ? 1 : 0);
    run.results.uint("sent", sent).uint("expected", expected).uint("delivered", st.deliveries).uint("lost", lost)
        .num("lost_percent", lost_pct).num("deliveries_per_s", per_s).num("elapsed_s", elapsed)
        .uint("frames", st.frames).uint("send_errors", st.errors);
    add_latency(run.results, l);
    run.results.num("host_cpu_s", cpu).uint("host_processes", pids.size()).num("host_cpu_us_per_delivery", us_per_delivery);
    run.latency_us = std::move(st.latency_us);
    for (Conn &c : subs) close(c.fd);
    for (Conn &c : pubs) close(c.fd);
    close(ep);
    return expected == st.deliveries ? 0 : 1;
}

int rooms_scenario(const Options &o, Run &run) {
    if (o.connections % o.rooms != 0) die("--connections must be a multiple of --rooms");
    std::vector<int> pids = server_pids(o);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    std::vector<Conn> conns = open_connections(o, o.connections, 0, ep);
    auto room_of = [&](size_t i) { return "r" + std::to_string(i % static_cast<size_t>(o.rooms)); };
    join_all(o, ep, conns, room_of);
    // The clock starts once the set-up traffic is over: the automatic join's
    // presence snapshot (up to 200 members, ~14 KB, from chat's send thread)
    // can reach a connection after its explicit join's reply; measured, 10,000
    // of them would delay the first messages. Quiet = 500 ms without a frame.
    for (auto quiet_deadline = Clock::now() + std::chrono::seconds(30); Clock::now() < quiet_deadline;) {
        size_t frames = 0;
        for (auto until = Clock::now() + std::chrono::milliseconds(500); Clock::now() < until;)
            pump(ep, conns, 50, [&](uint32_t, std::string_view, uint64_t) { ++frames; });
        if (frames == 0) break;
    }

    const uint64_t total = static_cast<uint64_t>(o.rate * o.duration);
    const uint64_t per_room = static_cast<uint64_t>(o.connections / o.rooms);
    std::vector<uint64_t> lat;
    lat.reserve(total * per_room);
    uint64_t delivered = 0, sent = 0;
    std::vector<double> cpu0;
    for (int pid : pids) cpu0.push_back(cpu_seconds(pid));
    std::mt19937 rng(42);
    std::uniform_int_distribution<size_t> pick(0, conns.size() - 1);
    const std::string pad = make_pad(o);
    const uint64_t t0 = now_ns();
    const double interval_ns = 1e9 / o.rate;
    uint64_t drain_until = 0;
    while (true) {
        uint64_t now = now_ns();
        while (sent < total && static_cast<double>(now - t0) >= static_cast<double>(sent) * interval_ns) {
            size_t from = pick(rng);
            std::string f =
                client_frame(message_command(o, conns[from], room_of(from), std::to_string(now_ns()) + "|" + pad, true));
            if (send(conns[from].fd, f.data(), f.size(), MSG_NOSIGNAL) >= 0) ++sent;
        }
        if (sent >= total && drain_until == 0) drain_until = now + 3'000'000'000ULL;
        if (drain_until && (now > drain_until || delivered >= sent * per_room)) break;
        pump(ep, conns, 1, [&](uint32_t, std::string_view t, uint64_t at) {
            size_t k = t.find("\"text\":\"");
            if (k == std::string_view::npos || !is_delivery(o, t)) return;
            uint64_t sent_at = std::strtoull(t.data() + k + 8, nullptr, 10);
            if (sent_at < t0) return;
            ++delivered;
            lat.push_back((at - sent_at) / 1000);
        });
    }
    double elapsed = static_cast<double>(now_ns() - t0) / 1e9, cpu = 0;
    for (size_t i = 0; i < pids.size(); ++i) cpu += cpu_seconds(pids[i]) - cpu0[i];
    const uint64_t expected = sent * per_room;
    const uint64_t lost = expected > delivered ? expected - delivered : 0;
    const double per_s = static_cast<double>(delivered) / elapsed;
    const double us_per_delivery = delivered ? cpu * 1e6 / static_cast<double>(delivered) : 0.0;
    const double us_per_message = sent ? cpu * 1e6 / static_cast<double>(sent) : 0.0;
    const Latency l = summarize(lat);
    std::printf("scenario rooms: %d connections in %d rooms over %zu replica(s), %.0f msg/s for %.1f s\n",
                o.connections, o.rooms, o.ports.size(), o.rate, o.duration);
    std::printf("sent %llu messages, expected %llu deliveries, delivered %llu, lost %llu\n",
                static_cast<unsigned long long>(sent), static_cast<unsigned long long>(expected),
                static_cast<unsigned long long>(delivered), static_cast<unsigned long long>(lost));
    std::printf("deliveries/s %.0f\n", per_s);
    std::printf("latency ms: p50 %.2f p90 %.2f p99 %.2f p99.9 %.2f max %.2f\n", l.p50, l.p90, l.p99, l.p999, l.max);
    std::printf("host cpu %.2f s over %zu process(es): %.2f us per delivery, %.1f us per message\n", cpu,
                pids.size(), us_per_delivery, us_per_message);
    run.results.uint("sent", sent).uint("expected", expected).uint("delivered", delivered).uint("lost", lost)
        .num("deliveries_per_s", per_s).num("elapsed_s", elapsed);
    add_latency(run.results, l);
    run.results.num("host_cpu_s", cpu).uint("host_processes", pids.size())
        .num("host_cpu_us_per_delivery", us_per_delivery).num("host_cpu_us_per_message", us_per_message);
    run.latency_us = std::move(lat);
    for (Conn &c : conns) close(c.fd);
    close(ep);
    return expected == delivered ? 0 : 1;
}

int connect_scenario(const Options &o, Run &run) {
    auto t0 = Clock::now();
    std::vector<Conn> conns = open_connections(o, o.connections, 0, -1);
    std::chrono::duration<double> d = Clock::now() - t0;
    std::printf("scenario connect: %d authenticated handshakes (%s) in %.2f s: %.0f handshakes/s\n", o.connections,
                o.auth.c_str(), d.count(), o.connections / d.count());
    std::vector<uint64_t> us;
    us.reserve(conns.size());
    for (const Conn &c : conns) us.push_back(c.handshake_us);
    Latency l = summarize(us);
    std::printf("handshake latency ms: p50 %.2f p90 %.2f p99 %.2f p99.9 %.2f max %.2f\n", l.p50, l.p90, l.p99, l.p999,
                l.max);
    run.results.integer("handshakes", o.connections).num("seconds", d.count())
        .num("handshakes_per_s", o.connections / d.count());
    add_latency(run.results, l);
    run.latency_us = std::move(us);
    for (Conn &c : conns) close(c.fd);
    return 0;
}

// aurora_connections summed over the hosts' /metrics.
// An unlabelled metric summed over the hosts' /metrics (0 where absent).
double host_metric(const Options &o, const std::string &name) {
    double total = 0;
    const std::string key = "\n" + name + " ";
    for (int port : o.ports) {
        std::string m = http_get(o.host, port, "/metrics");
        size_t p = m.find(key);
        if (p != std::string::npos) total += std::strtod(m.c_str() + p + key.size(), nullptr);
    }
    return total;
}

long host_connections(const Options &o) { return static_cast<long>(host_metric(o, "aurora_connections")); }

struct LoopbackCounters {
    uint64_t softnet_dropped = 0, tcp_retrans = 0;
};

// /proc/net/softnet_stat (column 2, hex, per CPU) and /proc/net/snmp (Tcp: RetransSegs).
LoopbackCounters loopback_counters() {
    LoopbackCounters c;
    std::ifstream soft("/proc/net/softnet_stat");
    for (std::string line; std::getline(soft, line);) {
        std::istringstream ss(line);
        std::string processed, dropped;
        if (ss >> processed >> dropped) c.softnet_dropped += std::strtoull(dropped.c_str(), nullptr, 16);
    }
    std::ifstream snmp("/proc/net/snmp");
    std::vector<std::string> names;
    for (std::string line; std::getline(snmp, line);) {
        if (line.rfind("Tcp:", 0) != 0) continue;
        std::istringstream ss(line.substr(4));
        std::vector<std::string> fields{std::istream_iterator<std::string>(ss), std::istream_iterator<std::string>()};
        if (names.empty()) {
            names = fields;
            continue;
        }
        for (size_t i = 0; i < names.size() && i < fields.size(); ++i)
            if (names[i] == "RetransSegs") c.tcp_retrans = std::strtoull(fields[i].c_str(), nullptr, 10);
    }
    return c;
}

// Idle is "sends nothing", not "reads nothing": reads and drops what the
// hosts send (chat's presence snapshots, heartbeat pings, answered) for
// `d`, so that unread data does not pile up in the hosts' memory and get
// counted as per-connection cost. Returns early when `stop_fd` (in the set
// with data.u32 = UINT32_MAX) becomes readable.
bool drain_idle(std::vector<Conn> &conns, int ep, std::chrono::milliseconds d) {
    auto until = Clock::now() + d;
    std::vector<epoll_event> events(512);
    char buf[16384];
    for (auto now = Clock::now(); now < until; now = Clock::now()) {
        int ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count()) + 1;
        int k = epoll_wait(ep, events.data(), static_cast<int>(events.size()), ms);
        for (int e = 0; e < k; ++e) {
            if (events[e].data.u32 == UINT32_MAX) return false;
            read_and_drop(conns[events[e].data.u32], buf, sizeof buf);
        }
    }
    return true;
}

int idle_scenario(const Options &o, Run &run) {
    std::vector<int> pids;
    for (int port : o.ports) pids.push_back(host_pid(o, port));
    long before = 0;
    for (int pid : pids) before += rss_kb(pid);
    const double heap_before = host_metric(o, "aurora_heap_in_use_bytes");
    // With --processes N, N children hold the connections (one process may
    // not have enough descriptors: `ulimit -Hn`); each says when it holds its
    // share and keeps it until the pipe to it closes.
    std::vector<Conn> conns;
    std::vector<pid_t> children;
    int ready[2] = {-1, -1}, hold[2] = {-1, -1};
    if (o.processes > 1) {
        if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(hold, O_CLOEXEC) != 0) die("pipe failed");
        int share = (o.connections + o.processes - 1) / o.processes;
        for (int k = 0, first = 0; first < o.connections; ++k, first += share) {
            int n = std::min(share, o.connections - first);
            pid_t pid = fork();
            if (pid < 0) die("fork failed");
            if (pid == 0) {
                close(ready[0]);
                close(hold[1]);
                int ep = epoll_create1(EPOLL_CLOEXEC);
                std::vector<Conn> mine = open_connections(o, n, first, ep);
                epoll_event stop{};
                stop.events = EPOLLIN;
                stop.data.u32 = UINT32_MAX;
                epoll_ctl(ep, EPOLL_CTL_ADD, hold[0], &stop);  // EOF when the parent is done
                char b = 1;
                if (write(ready[1], &b, 1) != 1) _exit(1);
                while (drain_idle(mine, ep, std::chrono::milliseconds(1000))) {
                }
                for (Conn &c : mine) close(c.fd);
                _exit(0);
            }
            children.push_back(pid);
        }
        close(ready[1]);
        close(hold[0]);
        for (size_t got = 0; got < children.size(); ++got) {
            char b = 0;
            if (read(ready[0], &b, 1) != 1) die("a connection-holding process failed (its error is above)");
        }
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (o.processes <= 1) conns = open_connections(o, o.connections, 0, ep);
    if (o.deflate) {  // one compressed message each (RSV1): what a host keeping client contexts pays for
        std::string f = client_frame(deflate_message("{\"type\":\"echo\",\"text\":\"hello from an idle client\"}"));
        f[0] = static_cast<char>(0x80 | 0x40 | 0x1);
        for (Conn &c : conns) (void)send(c.fd, f.data(), f.size(), MSG_NOSIGNAL);
    }
    // Ready to measure when the hosts count every connection (/metrics) and
    // their plugins' per-connection work has settled (RSS unchanged between
    // two probes); both bounded by a deadline.
    auto deadline = Clock::now() + std::chrono::seconds(30);
    while (host_connections(o) < o.connections) {
        if (Clock::now() > deadline) die("the hosts did not count every connection within 30 s");
        drain_idle(conns, ep, std::chrono::milliseconds(50));  // then poll /metrics again
    }
    // Steady state: RSS unchanged between two probes, then once more after
    // 6 s, which covers the hosts' periodic heap trim (every 5 s when the
    // connect burst left freed memory behind; aurora_heap_trims_total).
    long after = -1;
    auto settle = [&] {
        for (long prev = -2; after != prev && Clock::now() < deadline;) {
            prev = after;
            if (prev >= 0) drain_idle(conns, ep, std::chrono::milliseconds(200));  // between two RSS probes
            after = 0;
            for (int pid : pids) after += rss_kb(pid);
        }
    };
    settle();
    drain_idle(conns, ep, std::chrono::milliseconds(6000));
    deadline = Clock::now() + std::chrono::seconds(30);
    after = -1;
    settle();
    const double kb_per_connection = static_cast<double>(after - before) / o.connections;
    std::printf("scenario idle: %d connections, host RSS %ld KB -> %ld KB: %.2f KB per connection\n", o.connections,
                before, after, kb_per_connection);
    // The hosts' malloc view (aurora_heap_*): in use vs held free. RSS above
    // in-use is high-water from the connect burst or fragmentation.
    const double heap_after = host_metric(o, "aurora_heap_in_use_bytes");
    const double heap_free = host_metric(o, "aurora_heap_free_bytes");
    const double heap_kb_per_connection = (heap_after - heap_before) / 1024.0 / o.connections;
    std::printf("host heap in use %.0f KB -> %.0f KB: %.2f KB per connection; %.0f KB held free\n", heap_before / 1024,
                heap_after / 1024, heap_kb_per_connection, heap_free / 1024);
    run.results.integer("connections", o.connections).integer("host_rss_before_kb", before)
        .integer("host_rss_after_kb", after).num("host_rss_kb_per_connection", kb_per_connection)
        .num("host_heap_kb_per_connection", heap_kb_per_connection).num("host_heap_free_kb", heap_free / 1024)
        .uint("host_processes", pids.size());
    for (Conn &c : conns) close(c.fd);
    close(ep);
    if (!children.empty()) {
        close(hold[1]);  // the children close theirs and exit
        close(ready[0]);
        for (pid_t pid : children) waitpid(pid, nullptr, 0);
    }
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
        else if (a == "--threads") o.threads = std::clamp(std::stoi(next()), 1, 64);
        else if (a == "--processes") o.processes = std::max(1, std::stoi(next()));
        else if (a == "--rooms") o.rooms = std::max(1, std::stoi(next()));
        else if (a == "--ndjson") o.ndjson = true;
        else if (a == "--deflate") o.deflate = true;
        else if (a == "--lorem") o.lorem = true;
        else if (a == "--json") o.json_path = next();
        else if (a == "--git-rev") o.git_rev = next();
        else if (a == "--peer") o.peer = next();
        else if (a == "--pids") {
            std::stringstream ss(next());
            for (std::string p; std::getline(ss, p, ',');) o.pids.push_back(std::stoi(p));
        }
        else die("unknown option " + a + " (see the top of tests/bench/aurora_bench.cpp)");
    }
    if (o.ports.empty()) die("--ports is required");
    if (o.host.rfind("127.", 0) != 0) die("loopback addresses only (127.0.0.0/8)");
    if (o.duration <= 0 || o.duration > 600 || o.rate <= 0) die("--duration must be in (0, 600] and --rate > 0");
    if (o.subscribers > 200000 || o.connections > 200000) die("at most 200000 connections");
    if (o.auth == "token" && o.secret.empty()) die("--auth token needs --secret");
    if (o.peer != "aurora" && o.peer != "centrifugo") die("--peer is aurora or centrifugo");
    if (centrifugo(o) && o.secret.empty()) die("--peer centrifugo needs --secret (its token_hmac_secret_key)");
    if (centrifugo(o) && o.scenario != "fanout" && o.scenario != "rooms") die("--peer centrifugo: fanout or rooms");
    {  // one descriptor per connection: raise the limit (root may raise the hard one too)
        int held = (o.connections + o.processes - 1) / o.processes;
        rlim_t need = static_cast<rlim_t>(std::max(held, o.subscribers + o.publishers)) + 256;
        rlimit rl{};
        getrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < need) {
            rlimit want{need, std::max(rl.rlim_max, need)};
            if (setrlimit(RLIMIT_NOFILE, &want) != 0)
                die("needs " + std::to_string(need) + " open files; the limit is " + std::to_string(rl.rlim_max) +
                    " (raise it: ulimit -n)");
        }
    }
    if (o.git_rev.empty()) {
        const char *env = std::getenv("AURORA_GIT_REV");
        o.git_rev = env && *env ? env : "unknown";
    }
    // Opened before the run, so that a path that cannot be written fails at once.
    int json_fd = -1;
    if (!o.json_path.empty()) {
        json_fd = open(o.json_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (json_fd < 0) die("--json " + o.json_path + ": " + std::strerror(errno));
    }
    print_command(argc, argv);
    const std::string started = utc_now();
    Run run;
    int rc;
    const LoopbackCounters net0 = loopback_counters();
    if (o.scenario == "fanout") rc = fanout(o, run);
    else if (o.scenario == "connect") rc = connect_scenario(o, run);
    else if (o.scenario == "rooms") rc = rooms_scenario(o, run);
    else if (o.scenario == "idle") rc = idle_scenario(o, run);
    else die("unknown scenario " + o.scenario);
    {
        // Loopback is not lossless: past net.core.netdev_max_backlog packets
        // queued on a CPU, the kernel drops, and TCP retransmits after
        // 200 ms or more. Both counters are machine-wide.
        const LoopbackCounters net1 = loopback_counters();
        const uint64_t dropped = net1.softnet_dropped - net0.softnet_dropped;
        const uint64_t retrans = net1.tcp_retrans - net0.tcp_retrans;
        std::printf("kernel: %llu packets dropped at the backlog (net.core.netdev_max_backlog), %llu TCP segments "
                    "retransmitted (machine-wide, during the run)\n",
                    static_cast<unsigned long long>(dropped), static_cast<unsigned long long>(retrans));
        run.results.uint("kernel_backlog_drops", dropped).uint("kernel_tcp_retransmits", retrans);
    }
    if (json_fd >= 0) {
        std::fflush(stdout);
        append_line(json_fd, o.json_path,
                    JsonObject()
                        .str("scenario", o.scenario)
                        .str("time_utc", started)
                        .raw("params", params_json(o))
                        .raw("machine", machine_json())
                        .str("git_revision", o.git_rev)
                        .str("command", command_text(argc, argv))
                        .raw("results", run.results.done())
                        .raw("latency_cdf", cdf_json(run.latency_us))
                        .integer("exit_status", rc)
                        .done() + "\n");
        if (close(json_fd) != 0) die("--json " + o.json_path + ": " + std::strerror(errno));
    }
    return rc;
}
