// The WebSocket side of the service thread: the opening handshake and
// authentication, a connection's start and end, bounded send queues, the
// rooms' limits and hooks, the heartbeat. Bytes and frames on the socket are
// ws_connection.cpp's, complete messages message_pipeline.cpp's, writing
// outbound.cpp's. Everything here runs on the service thread.
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "frame_check.h"
#include "host.h"
#include "json_text.h"
#include "log.h"

namespace aurora::host {

namespace {

bool is_ip_address(std::string_view s) {
    unsigned char buf[sizeof(in6_addr)];
    std::string z(s);
    return inet_pton(AF_INET, z.c_str(), buf) == 1 || inet_pton(AF_INET6, z.c_str(), buf) == 1;
}

// Whether `addr` matches one trusted_proxies rule (an address, or an IPv4
// CIDR range): "10.1.2.3" matches "10.1.2.3" and "10.0.0.0/8"; IPv6 by exact
// text only.
bool address_matches(std::string_view addr, std::string_view rule) {
    size_t slash = rule.find('/');
    if (slash == std::string_view::npos) return addr == rule;
    in_addr a{}, net{};
    std::string a_s(addr), net_s(rule.substr(0, slash));
    int bits = std::atoi(std::string(rule.substr(slash + 1)).c_str());
    if (bits < 0 || bits > 32 || inet_pton(AF_INET, a_s.c_str(), &a) != 1 || inet_pton(AF_INET, net_s.c_str(), &net) != 1)
        return false;
    uint32_t mask = bits == 0 ? 0 : htonl(~uint32_t{0} << (32 - bits));
    return (a.s_addr & mask) == (net.s_addr & mask);
}

// The bearer token, in the order documented in host_api.h: a "Bearer."
// subprotocol, "Authorization: Bearer", "?token=".
std::string find_token(const HttpHead &head) {
    for (const std::string &p : head.header_items("sec-websocket-protocol")) {
        if (p.starts_with("Bearer.")) return p.substr(7);
    }
    if (auto auth = head.header("authorization"); auth && auth->size() > 7 && strncasecmp(auth->data(), "Bearer ", 7) == 0)
        return std::string(auth->substr(7));
    if (auto t = head.query_param("token")) return *t;
    return {};
}

// The subprotocol to answer with: "aurora.ndjson" or "aurora" if offered,
// else the "Bearer.<token>" the client offered (browsers drop a socket whose
// answer does not name one they offered), else none.
std::string choose_subprotocol(const HttpHead &head) {
    std::string bearer;
    bool aurora = false, ndjson = false;
    for (const std::string &p : head.header_items("sec-websocket-protocol")) {
        if (p == "aurora.ndjson") ndjson = true;
        else if (p == "aurora") aurora = true;
        else if (p.starts_with("Bearer.") && bearer.empty()) bearer = p;
    }
    return ndjson ? "aurora.ndjson" : aurora ? "aurora" : bearer;
}

// A complete HTTP/1.1 response on a socket the host owns, then closed. The
// socket is fresh and the response small: one non-blocking send takes it.
void refuse_socket(int fd, unsigned status, std::string_view reason, std::string_view extra_headers = {}) {
    std::string body = "{\"error\":";
    append_json_string(body, reason);
    body += "}";
    const char *text = status == 400 ? "Bad Request" : status == 401 ? "Unauthorized" : status == 403 ? "Forbidden"
                     : status == 404 ? "Not Found" : status == 426 ? "Upgrade Required"
                     : status == 429 ? "Too Many Requests" : status == 503 ? "Service Unavailable" : "Error";
    std::string out = "HTTP/1.1 " + std::to_string(status) + " " + text +
                      "\r\ncontent-type: application/json\r\ncontent-length: " + std::to_string(body.size()) +
                      "\r\nconnection: close\r\n" + std::string(extra_headers) + "\r\n" + body;
    ssize_t ignored = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)ignored;
    ::shutdown(fd, SHUT_WR);
    ::close(fd);
}

// Refuses an upgrade that lws parsed, with a complete HTTP/1.1 response.
// (lws's own lws_return_http_status answers an upgrade request with
// HTTP/1.0, which WebSocket clients such as Python's websockets reject.)
int refuse_upgrade(lws *wsi, unsigned status, std::string_view reason) {
    std::string body = "{\"error\":";
    append_json_string(body, reason);
    body += "}";
    std::string head = "HTTP/1.1 " + std::to_string(status) + " Bad Request\r\ncontent-type: application/json\r\n"
                       "content-length: " + std::to_string(body.size()) + "\r\nconnection: close\r\n\r\n";
    std::vector<unsigned char> buf(LWS_PRE + head.size() + body.size());
    std::memcpy(buf.data() + LWS_PRE, head.data(), head.size());
    std::memcpy(buf.data() + LWS_PRE + head.size(), body.data(), body.size());
    if (lws_write(wsi, buf.data() + LWS_PRE, head.size() + body.size(), LWS_WRITE_HTTP_FINAL) < 0) return -1;
    return 1;  // "rejected, response sent": lws completes the transaction
}

std::string peer_address(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    char buf[INET6_ADDRSTRLEN] = {0};
    if (getpeername(fd, reinterpret_cast<sockaddr *>(&ss), &len) != 0) return {};
    if (ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in *>(&ss)->sin_addr, buf, sizeof buf);
    } else if (ss.ss_family == AF_INET6) {
        auto *a6 = reinterpret_cast<sockaddr_in6 *>(&ss);
        if (IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr)) inet_ntop(AF_INET, &a6->sin6_addr.s6_addr[12], buf, sizeof buf);
        else inet_ntop(AF_INET6, &a6->sin6_addr, buf, sizeof buf);
    }
    return buf;
}

// The Sec-WebSocket-Accept value for a key (RFC 6455 §4.2.2).
std::string accept_key(std::string_view key) {
    std::string in(key);
    in += "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char digest[20];
    lws_SHA1(reinterpret_cast<const unsigned char *>(in.data()), in.size(), digest);
    char out[64];
    int n = lws_b64_encode_string(reinterpret_cast<const char *>(digest), 20, out, sizeof out);
    return n > 0 ? std::string(out, static_cast<size_t>(n)) : std::string();
}

}  // namespace

// The client's address: the TCP peer, or, when the peer is a trusted proxy
// (config `trusted_proxies`), the nearest address in X-Forwarded-For that is
// not itself a trusted proxy (read right to left: the right end was added by
// the proxy we trust; anything to its left the client may have made up).
std::string Host::client_address(const std::string &peer, std::string_view xff) const {
    auto trusted = [&](std::string_view a) {
        for (const std::string &t : cfg_.trusted_proxies) {
            if (address_matches(a, t)) return true;
        }
        return false;
    };
    if (cfg_.trusted_proxies.empty() || !trusted(peer)) return peer;
    std::string_view rest = xff;
    while (!rest.empty()) {
        size_t comma = rest.rfind(',');
        std::string_view item = comma == std::string_view::npos ? rest : rest.substr(comma + 1);
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(0, comma);
        while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
        while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
        if (item.empty() || item.size() > 45) break;  // malformed: stop at what we know
        if (!is_ip_address(item)) {
            // Only an address may stand for the client: it keys rate limits
            // and throttles in Redis. Garbage here means the proxy passed on
            // what a client made up; fall back to the peer.
            AURORA_HLOG(AURORA_LOG_WARN, 0, "X-Forwarded-For from trusted proxy %s holds a non-address: ignored",
                        peer.c_str());
            break;
        }
        if (!trusted(item)) return std::string(item);
    }
    return peer;
}

std::string Host::client_address(lws *wsi) const {
    char buf[64] = {0};
    lws_get_peer_simple(wsi, buf, sizeof buf);
    std::string xff;
    if (int n = lws_hdr_total_length(wsi, WSI_TOKEN_X_FORWARDED_FOR); n > 0) {
        xff.assign(static_cast<size_t>(n) + 1, '\0');
        int got = lws_hdr_copy(wsi, xff.data(), n + 1, WSI_TOKEN_X_FORWARDED_FOR);
        xff.resize(got > 0 ? static_cast<size_t>(got) : 0);
    }
    return client_address(buf, xff);
}

aurora_conn *Host::find_conn(aurora_conn_id id) {
    auto it = conns_.find(id);
    return it == conns_.end() ? nullptr : it->second.get();
}

// An upgrade that lws parsed: the front door hands every connection's first
// request that is an upgrade to accept_websocket, so this one came after
// other requests on a keep-alive connection. Clients open a connection for a
// WebSocket (browsers always do; nginx does unless told to keep upstream
// connections alive for the WebSocket location): refuse clearly.
int Host::on_confirm_upgrade(lws *wsi) {
    m_.auth_rejected->add(1);
    return refuse_upgrade(wsi, 400, "a WebSocket upgrade must be the first request of its connection");
}

// The opening handshake (RFC 6455 §4.2), on a socket the front door handed
// over with the head read: checks, authenticate hooks, the 101, and the
// connection on the loop. Refusals are complete HTTP/1.1 responses.
void Host::accept_websocket(Arrival &a) {
    const HttpHead &head = *a.upgrade;
    const int fd = a.fd;
    const std::string remote = client_address(peer_address(fd), head.header_list("x-forwarded-for"));
    if (host_path(head.path) != HostPath::WebSocket) {
        m_.auth_rejected->add(1);
        return refuse_socket(fd, 404, "WebSocket endpoints are / and /ws");
    }
    if (draining_) return refuse_socket(fd, 503, "shutting down");
    if (head.header("sec-websocket-version").value_or("") != "13")
        return refuse_socket(fd, 426, "Sec-WebSocket-Version must be 13", "sec-websocket-version: 13\r\n");
    std::string_view key = head.header("sec-websocket-key").value_or("");
    if (key.size() != 24 || key[22] != '=' || key[23] != '=')  // base64 of 16 bytes
        return refuse_socket(fd, 400, "Sec-WebSocket-Key must be 16 bytes in base64");

    aurora_handshake hs;
    hs.head = &head;
    hs.path = head.path;
    hs.token = find_token(head);
    hs.remote_addr = remote;
    AuthOutcome auth = plugins_.authenticate(&hs);
    if (auth.kind == AuthOutcome::Kind::Rejected) {
        AURORA_HLOG(AURORA_LOG_INFO, 0, "upgrade from %s refused by %s: %u %s", remote.c_str(), auth.plugin.c_str(),
                    auth.status, auth.reason.c_str());
        m_.auth_rejected->add(1);
        return refuse_socket(fd, auth.status, auth.reason);
    }
    if (auth.kind == AuthOutcome::Kind::NoOpinion && !cfg_.allow_anonymous) {
        m_.auth_rejected->add(1);
        return refuse_socket(fd, 401, "authentication required");
    }

    std::string proto = choose_subprotocol(head);
    std::string resp = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Accept: " + accept_key(key) + "\r\n";
    if (!proto.empty()) resp += "Sec-WebSocket-Protocol: " + proto + "\r\n";
    std::optional<ws::DeflateParams> deflate;
    if (head.header("sec-websocket-extensions")) {
        std::string answer;
        deflate = ws::negotiate_deflate(head.header_list("sec-websocket-extensions"), cfg_.compression, answer);
        if (deflate) resp += "Sec-WebSocket-Extensions: " + answer + "\r\n";
    }
    resp += "\r\n";
    ssize_t sent = ::send(fd, resp.data(), resp.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent != static_cast<ssize_t>(resp.size())) {  // a fresh socket takes a few hundred bytes, or it is dead
        ::close(fd);
        return;
    }
    start_conn(fd, std::move(auth.user_id), std::move(auth.username), remote, proto == "aurora.ndjson", deflate);
}

void Host::start_conn(int fd, std::string user_id, std::string username, std::string remote_addr, bool ndjson,
                      std::optional<ws::DeflateParams> deflate) {
    auto c = std::make_unique<aurora_conn>();
    c->id = next_conn_id_++;
    c->host = this;
    c->reader = ws::FrameReader(cfg_.limits.hard_max_frame_bytes);
    if (deflate) {
        c->deflate = true;
        c->deflate_params = *deflate;
        c->reader.allow_compressed();
    }
    if (uv_tcp_init(&loop_, &c->tcp) != 0) {
        ::close(fd);
        return;
    }
    c->tcp.data = c.get();
    if (uv_tcp_open(&c->tcp, fd) != 0) {
        // The handle owns nothing yet: close it (no callback needs c) and the fd.
        c->tcp.data = nullptr;
        uv_close(reinterpret_cast<uv_handle_t *>(&c->tcp), nullptr);
        ::close(fd);
        // c must outlive the close callback: keep it until the loop runs it.
        static_cast<void>(c.release());  // a few hundred bytes, once per failed socket
        return;
    }
    c->tcp_open = true;
    open_sockets_.fetch_add(1, std::memory_order_relaxed);
    uv_read_start(
        reinterpret_cast<uv_stream_t *>(&c->tcp),
        [](uv_handle_t *h, size_t, uv_buf_t *buf) {
            auto *conn = static_cast<aurora_conn *>(h->data);
            std::vector<char> &rb = conn->host->read_buf_;
            *buf = uv_buf_init(rb.data(), static_cast<unsigned>(rb.size()));
        },
        [](uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
            auto *conn = static_cast<aurora_conn *>(st->data);
            conn->host->on_read(conn, nread, buf);
        });
    c->remote_addr = std::move(remote_addr);
    c->user_id = std::move(user_id);
    c->username = std::move(username);
    c->ndjson = ndjson;
    c->plugin_data.assign(plugins_.size(), nullptr);
    c->last_seen_ms = uv_now(&loop_);
    aurora_conn *raw = c.get();
    conns_[raw->id] = std::move(c);
    m_.connections->add(1);
    m_.connections_total->add(1);
    AURORA_HLOG(AURORA_LOG_DEBUG, raw->id, "connected from %s as '%s'", raw->remote_addr.c_str(),
                raw->user_id.c_str());
    plugins_.connected(raw);
    if (draining_) close_conn(raw, ws::kGoingAway, "server shutting down", m_.closes_shutdown);
}

void Host::finish_conn(aurora_conn *c) {
    // Leave every room (on_leave hooks), then on_disconnect.
    std::vector<std::string> rooms = c->rooms;
    for (const auto &r : rooms) room_leave(c, r);
    plugins_.disconnected(c);
    AURORA_HLOG(AURORA_LOG_DEBUG, c->id, "closed (code %u)", c->close_code);
    m_.connections->add(-1);
    conns_.erase(c->id);
    maybe_finish_drain();
}

void Host::enqueue(aurora_conn *c, const OutFramePtr &f) {
    if (c->closing) return;
    const auto &L = cfg_.limits;
    if (c->outq.size() + 1 > L.send_queue_max_frames || c->out_bytes + f->len() > L.send_queue_max_bytes) {
        AURORA_HLOG(AURORA_LOG_WARN, c->id, "send queue over its bound (%zu frames, %zu bytes): closing with 1008",
                    c->outq.size(), c->out_bytes);
        close_conn(c, ws::kPolicy, "too slow: send queue over its bound", m_.closes_slow);
        return;
    }
    c->outq.push_back(f);
    c->out_bytes += f->len();
    out_.mark(c);
}

// Any frame or pong from the peer shows it is there.
void Host::alive(aurora_conn *c) {
    c->last_seen_ms = uv_now(&loop_);
    c->ping_sent_ms = 0;
}

// Once a second, over every connection: ping the ones silent for
// heartbeat.ping_interval_s; drop the ones that left a ping unanswered for
// heartbeat.timeout_s (a ping that cannot even be written that long, because
// the socket stays full, counts as unanswered).
void Host::heartbeat_tick() {
    if (++ticks_ % 5 == 0) memory_.trim_if_grown();
    const uint64_t now = uv_now(&loop_);
    const uint64_t interval = static_cast<uint64_t>(cfg_.ping_interval_s) * 1000;
    const uint64_t timeout = static_cast<uint64_t>(cfg_.ping_timeout_s) * 1000;
    std::vector<aurora_conn *> overdue;
    for (auto &[id, owned] : conns_) {
        aurora_conn *c = owned.get();
        if (c->gone && now - c->gone_ms >= kGoneGraceMs) overdue.push_back(c);
        if (c->closing) {
            // A close frame that cannot be written, or that the client never answers.
            if (c->tcp_open && c->close_queued && now >= c->close_deadline_ms) close_handle(c);
            continue;
        }
        if (c->ping_sent_ms == 0) {
            if (now - c->last_seen_ms < interval) continue;
            c->ping_sent_ms = now;
            c->ping_due = true;
            out_.mark(c);
        } else if (now - c->ping_sent_ms >= timeout) {
            AURORA_HLOG(AURORA_LOG_DEBUG, c->id, "heartbeat ping unanswered for %d s: dropping", cfg_.ping_timeout_s);
            m_.closes_heartbeat->add(1);
            drop_now(c);
        }
    }
    for (aurora_conn *c : overdue) {
        AURORA_HLOG(AURORA_LOG_WARN, c->id, "closed %llu s ago and a plugin still holds %u of its messages: letting go",
                    static_cast<unsigned long long>(kGoneGraceMs / 1000), c->pending);
        finish_conn(c);
    }
}

// ---- rooms ----

void Host::broadcast_local(std::string_view room, const OutFramePtr &f, aurora_conn_id except) {
    // enqueue may close a member (slow consumer) but never removes it from
    // the room during this loop: removal happens in finish_conn.
    rooms_.for_each_member(room, [&](aurora_conn *c) {
        if (c->id != except) enqueue(c, f);
    });
}

aurora_status Host::room_join(aurora_conn *c, std::string_view room) {
    if (room.empty() || room.size() > 256) return AURORA_ERR_INVALID;
    if (c->gone) return AURORA_ERR_NOT_FOUND;
    if (rooms_.has(c, room)) return AURORA_OK;
    if (c->rooms.size() >= cfg_.limits.max_rooms_per_conn) return AURORA_ERR_LIMIT;
    if (!plugins_.may_join(c, room)) return AURORA_ERR_DENIED;
    rooms_.add(c, room);
    return AURORA_OK;
}

aurora_status Host::room_leave(aurora_conn *c, std::string_view room) {
    std::string name;
    if (!rooms_.remove(c, room, name)) return AURORA_ERR_NOT_FOUND;
    plugins_.left(c, name);
    return AURORA_OK;
}

void *Host::conn_data(const aurora_plugin_ctx *p, const aurora_conn *c) const {
    return p->index < c->plugin_data.size() ? c->plugin_data[p->index] : nullptr;
}

void Host::set_conn_data(const aurora_plugin_ctx *p, aurora_conn *c, void *data) {
    if (p->index < c->plugin_data.size()) c->plugin_data[p->index] = data;
}

}  // namespace aurora::host
