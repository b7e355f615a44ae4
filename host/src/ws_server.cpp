// The WebSocket side of the service thread: upgrade and authentication,
// frame assembly and validation, the message pipeline, bounded send queues,
// rooms. Everything here runs on the service thread.
#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

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

// "\uD800"-"\uDFFF" written as a JSON escape.
bool has_lone_surrogate_escape(std::string_view text) {
    for (size_t i = 0; i + 3 < text.size(); ++i) {
        if (text[i] == '\\' && text[i + 1] == 'u' && (text[i + 2] == 'd' || text[i + 2] == 'D') &&
            std::strchr("89abcdefABCDEF", text[i + 3]) && text[i + 3] != '\0')
            return true;
    }
    return false;
}

std::string header(lws *wsi, enum lws_token_indexes tok) {
    int n = lws_hdr_total_length(wsi, tok);
    if (n <= 0) return {};
    std::string s(static_cast<size_t>(n) + 1, '\0');
    int got = lws_hdr_copy(wsi, s.data(), n + 1, tok);
    s.resize(got > 0 ? static_cast<size_t>(got) : 0);
    return s;
}


// The bearer token, in the order documented in host_api.h.
// "10.1.2.3" matches "10.1.2.3" and "10.0.0.0/8"; IPv6 by exact text only.
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

std::string find_token(lws *wsi) {
    std::string protos = header(wsi, WSI_TOKEN_PROTOCOL);
    size_t pos = 0;
    while (pos < protos.size()) {
        size_t end = protos.find(',', pos);
        if (end == std::string::npos) end = protos.size();
        std::string_view p(protos.data() + pos, end - pos);
        while (!p.empty() && p.front() == ' ') p.remove_prefix(1);
        while (!p.empty() && p.back() == ' ') p.remove_suffix(1);
        if (p.starts_with("Bearer.")) return std::string(p.substr(7));
        pos = end + 1;
    }
    std::string auth = header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (auth.size() > 7 && strncasecmp(auth.c_str(), "Bearer ", 7) == 0) return auth.substr(7);
    char buf[4096];
    if (const char *v = lws_get_urlarg_by_name(wsi, "token=", buf, sizeof buf)) return v;
    return {};
}

// Refuses an upgrade with a complete HTTP/1.1 response and closes. (lws's
// own lws_return_http_status answers an upgrade request with HTTP/1.0,
// which WebSocket clients such as Python's websockets reject as invalid.)
int refuse_upgrade(lws *wsi, unsigned status, std::string_view reason) {
    std::string body = "{\"error\":";
    append_json_string(body, reason);
    body += "}";
    const char *text = status == 401 ? "Unauthorized" : status == 403 ? "Forbidden" : status == 404 ? "Not Found"
                     : status == 429 ? "Too Many Requests" : status == 503 ? "Service Unavailable" : "Error";
    std::string head = "HTTP/1.1 " + std::to_string(status) + " " + text +
                       "\r\ncontent-type: application/json\r\ncontent-length: " + std::to_string(body.size()) +
                       "\r\nconnection: close\r\n\r\n";
    std::vector<unsigned char> buf(LWS_PRE + head.size() + body.size());
    std::memcpy(buf.data() + LWS_PRE, head.data(), head.size());
    std::memcpy(buf.data() + LWS_PRE + head.size(), body.data(), body.size());
    if (lws_write(wsi, buf.data() + LWS_PRE, head.size() + body.size(), LWS_WRITE_HTTP_FINAL) < 0) return -1;
    return 1;  // "rejected, response sent": lws completes the transaction
}

}  // namespace

// The client's address: the TCP peer, or, when the peer is a trusted proxy
// (config `trusted_proxies`), the nearest address in X-Forwarded-For that is
// not itself a trusted proxy (read right to left: the right end was added by
// the proxy we trust; anything to its left the client may have made up).
std::string Host::client_address(lws *wsi) const {
    char buf[64] = {0};
    lws_get_peer_simple(wsi, buf, sizeof buf);
    std::string peer = buf;
    auto trusted = [&](std::string_view a) {
        for (const std::string &t : cfg_.trusted_proxies) {
            if (address_matches(a, t)) return true;
        }
        return false;
    };
    if (cfg_.trusted_proxies.empty() || !trusted(peer)) return peer;
    std::string xff = header(wsi, WSI_TOKEN_X_FORWARDED_FOR);
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

aurora_conn *Host::find_conn(aurora_conn_id id) {
    auto it = conns_.find(id);
    return it == conns_.end() ? nullptr : it->second.get();
}

int Host::on_confirm_upgrade(lws *wsi) {
    std::string path = header(wsi, WSI_TOKEN_GET_URI);
    if (path != "/" && path != "/ws") {
        m_.auth_rejected->add(1);
        return refuse_upgrade(wsi, 404, "WebSocket endpoints are / and /ws");
    }
    if (draining_) return refuse_upgrade(wsi, 503, "shutting down");

    aurora_handshake hs;
    hs.wsi = wsi;
    hs.path = path;
    hs.token = find_token(wsi);
    if (adopting_ && !adopt_used_ && !front_info_.count(wsi))
        front_info_[wsi] = FrontInfo{adopting_->token, adopting_->echo};
    if (adopting_) adopt_used_ = true;
    if (auto fi = front_info_.find(wsi); fi != front_info_.end() && !fi->second.token.empty()) {
        hs.token = std::move(fi->second.token);  // the Bearer subprotocol the front door took out: used once
        fi->second.token.clear();
    }
    hs.remote_addr = client_address(wsi);

    for (auto &p : plugins_) {
        if (!p->hooks.authenticate) continue;
        aurora_identity id;
        std::memset(&id, 0, sizeof id);
        id.struct_size = sizeof id;
        aurora_auth_verdict v = timed(p.get(), Hook::Authenticate,
                                      [&] { return p->hooks.authenticate(p->state, &hs, &id); });
        if (v == AURORA_AUTH_ABSTAIN) continue;
        if (v == AURORA_AUTH_ACCEPT && id.user_id.ptr && id.user_id.len) {
            PendingIdentity pi;
            pi.user_id.assign(id.user_id.ptr, id.user_id.len);
            if (id.username.ptr && id.username.len) pi.username.assign(id.username.ptr, id.username.len);
            else pi.username = pi.user_id;
            identities_[wsi] = std::move(pi);
            return 0;
        }
        unsigned status = id.reject_status >= 400 && id.reject_status < 600 ? id.reject_status : 401;
        std::string reason = v == AURORA_AUTH_ACCEPT ? "plugin accepted without a user id"
                             : id.reject_reason.ptr ? std::string(id.reject_reason.ptr, id.reject_reason.len)
                                                    : "unauthorized";
        AURORA_HLOG(AURORA_LOG_INFO, 0, "upgrade from %s refused by %s: %u %s", hs.remote_addr.c_str(),
                    p->name.c_str(), status, reason.c_str());
        m_.auth_rejected->add(1);
        return refuse_upgrade(wsi, status, reason);
    }
    if (cfg_.allow_anonymous) return 0;
    m_.auth_rejected->add(1);
    return refuse_upgrade(wsi, 401, "authentication required");
}

void Host::on_established(lws *wsi) {
    auto c = std::make_unique<aurora_conn>();
    c->id = next_conn_id_++;
    c->wsi = wsi;
    c->remote_addr = client_address(wsi);
    if (auto it = identities_.find(wsi); it != identities_.end()) {
        c->user_id = std::move(it->second.user_id);
        c->username = std::move(it->second.username);
        identities_.erase(it);
    }
    c->plugin_data.assign(plugins_.size(), nullptr);
    c->last_seen_ms = uv_now(&loop_);
    if (const lws_protocols *proto = lws_get_protocol(wsi); proto && proto->name)
        c->ndjson = std::string_view(proto->name) == "aurora.ndjson";
    aurora_conn *raw = c.get();
    conn_by_wsi_[wsi] = raw;
    conns_[raw->id] = std::move(c);
    m_.connections->add(1);
    m_.connections_total->add(1);
    AURORA_HLOG(AURORA_LOG_DEBUG, raw->id, "connected from %s as '%s'", raw->remote_addr.c_str(),
                raw->user_id.c_str());
    for (auto &p : plugins_) {
        if (p->hooks.on_connect) timed(p.get(), Hook::OnConnect, [&] { p->hooks.on_connect(p->state, raw); });
    }
    if (draining_) close_conn(raw, LWS_CLOSE_STATUS_GOINGAWAY, "server shutting down", m_.closes_shutdown);
}

void Host::on_ws_closed(lws *wsi) {
    auto it = conn_by_wsi_.find(wsi);
    if (it == conn_by_wsi_.end()) return;
    aurora_conn *c = it->second;
    if (c->close_code == 0 && !c->dropped) m_.closes_client->add(1);  // dropped ones were counted by reason
    conn_by_wsi_.erase(it);
    c->wsi = nullptr;
    c->gone = true;
    c->gone_ms = uv_now(&loop_);
    c->closing = true;
    c->outq.clear();
    c->out_bytes = 0;
    if (c->pending == 0) return finish_conn(c);
    AURORA_HLOG(AURORA_LOG_DEBUG, c->id, "closed with %u message(s) in flight: they are processed first", c->pending);
}

void Host::finish_conn(aurora_conn *c) {
    // Leave every room (on_leave hooks), then on_disconnect.
    std::vector<std::string> rooms = c->rooms;
    for (const auto &r : rooms) room_leave(c, r);
    for (auto &p : plugins_) {
        if (p->hooks.on_disconnect) timed(p.get(), Hook::OnDisconnect, [&] { p->hooks.on_disconnect(p->state, c); });
    }
    AURORA_HLOG(AURORA_LOG_DEBUG, c->id, "closed (code %u)", c->close_code);
    m_.connections->add(-1);
    conns_.erase(c->id);
    maybe_finish_drain();
}

bool TokenBucket::take(const Budget &b, uint64_t now_ms, uint64_t &retry_after_ms) {
    if (tokens < 0) {
        tokens = static_cast<float>(b.burst);
        last_ms = now_ms;
    }
    if (now_ms > last_ms) {
        tokens = std::min(static_cast<float>(b.burst),
                          tokens + static_cast<float>(b.per_s * static_cast<double>(now_ms - last_ms) / 1000.0));
        last_ms = now_ms;
    }
    if (tokens >= 1) {
        tokens -= 1;
        return true;
    }
    retry_after_ms = b.per_s > 0 ? static_cast<uint64_t>((1 - tokens) * 1000.0 / b.per_s) + 1 : 1000;
    return false;
}

// One frame's cost: from the connection's bucket for every frame, then from
// its type's own bucket if it has one (`type` empty: not known yet). Over
// budget: a rate_limited answer and false; a connection that keeps sending
// while refused (more than limits.frames.burst in a row) is closed with 1008.
bool Host::spend_budget(aurora_conn *c, std::string_view type, std::string_view ref_json) {
    const Limits &L = cfg_.limits;
    const uint64_t now = uv_now(&loop_);
    uint64_t retry = 0;
    std::string limit;
    if (type.empty()) {
        if (!c->frame_bucket.take(L.frames, now, retry)) limit = "frames";
    } else {
        for (size_t i = 0; i < L.frame_budgets.size(); ++i) {
            if (L.frame_budgets[i].first != type || L.frame_budgets[i].second.per_s <= 0) continue;
            if (!c->type_buckets) c->type_buckets = std::make_unique<TokenBucket[]>(L.frame_budgets.size());
            if (!c->type_buckets[i].take(L.frame_budgets[i].second, now, retry)) limit = "frames:" + std::string(type);
            break;
        }
    }
    if (limit.empty()) {
        if (!type.empty()) c->refused_in_row = 0;
        return true;
    }
    m_.frames_refused->add(1);
    if (++c->refused_in_row > static_cast<uint32_t>(L.frames.burst)) {
        AURORA_HLOG(AURORA_LOG_INFO, c->id, "flood: %u frames over budget in a row: closing with 1008", c->refused_in_row);
        close_conn(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "flood: frames over budget", m_.closes_flood);
        return false;
    }
    std::string out = "{\"type\":\"rate_limited\",\"retry_after_ms\":" + std::to_string(retry) + ",\"limit\":";
    append_json_string(out, limit);
    if (!ref_json.empty()) out += ",\"ref\":" + std::string(ref_json);
    out += '}';
    enqueue(c, make_frame(out));
    return false;
}

int Host::on_receive(lws *wsi, const void *in, size_t len) {
    auto it = conn_by_wsi_.find(wsi);
    if (it == conn_by_wsi_.end()) return -1;
    aurora_conn *c = it->second;
    if (c->closing) return 0;  // ignore input once closing
    alive(c);

    if (lws_is_first_fragment(wsi) && c->rx_total == 0) {
        c->rx_binary = lws_frame_is_binary(wsi);
        // The whole frame's length is known from its header: refuse early.
        size_t announced = len + lws_remaining_packet_payload(wsi);
        if (announced > cfg_.limits.hard_max_frame_bytes) {
            m_.closes_too_large->add(1);
            c->close_code = LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE;
            c->closing = true;
            return close_now(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "frame too large");
        }
    }
    c->rx_total += len;
    m_.bytes_in->add(static_cast<double>(len));
    if (c->rx_total > cfg_.limits.hard_max_frame_bytes) {
        m_.closes_too_large->add(1);
        c->close_code = LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE;
        c->closing = true;
        return close_now(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "message too large");
    }
    if (c->rx_total > cfg_.limits.max_frame_bytes) {
        c->rx_too_large = true;
        c->rx.clear();
        c->rx.shrink_to_fit();
    } else if (!c->rx_binary) {
        c->rx.append(static_cast<const char *>(in), len);
    }

    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi) != 0) return 0;

    // A complete message.
    m_.frames_in->add(1);
    bool too_large = c->rx_too_large, binary = c->rx_binary;
    std::string text = std::move(c->rx);
    c->rx.clear();
    c->rx_total = 0;
    c->rx_too_large = false;
    c->rx_binary = false;
    if (!binary && !too_large && !valid_utf8(text)) {
        // RFC 6455 §8.1: a text message that is not UTF-8 fails the connection with 1007.
        m_.closes_protocol->add(1);
        c->close_code = LWS_CLOSE_STATUS_INVALID_PAYLOAD;
        c->closing = true;
        return close_now(wsi, LWS_CLOSE_STATUS_INVALID_PAYLOAD, "text message is not valid UTF-8");
    }
    if (!spend_budget(c, {}, {})) return 0;
    if (binary) {
        send_error(c, "binary_not_supported", "binary frames are not supported; send JSON text frames", {});
    } else if (too_large) {
        send_error(c, "too_large",
                   "frame larger than " + std::to_string(cfg_.limits.max_frame_bytes) + " bytes", {});
    } else {
        handle_frame(c, text);
    }
    return 0;
}

void Host::handle_frame(aurora_conn *c, std::string_view text) {
    JsonPtr j = parse_json(text);
    if (!j) {
        // Valid UTF-8 (on_receive checked) that cJSON refuses for a "\\uD8xx"
        // escape with no partner: a lone surrogate is no character at all.
        if (has_lone_surrogate_escape(text))
            return send_error(c, "bad_utf8", "a \\u escape encodes a lone UTF-16 surrogate", {});
        return send_error(c, "bad_json", "frame is not valid JSON", {});
    }
    if (!cJSON_IsObject(j.get())) return send_error(c, "not_object", "frame must be a JSON object", {});

    std::string ref_json;
    if (const cJSON *ref = cJSON_GetObjectItemCaseSensitive(j.get(), "ref")) {
        if (!cJSON_IsString(ref) && !cJSON_IsNumber(ref))
            return send_error(c, "bad_field", "'ref' must be a string or a number", {});
        char *r = cJSON_PrintUnformatted(ref);
        if (r) ref_json = r;
        cJSON_free(r);
    }
    auto msg = std::make_unique<aurora_msg>();
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j.get(), "type");
    if (type) {
        if (!cJSON_IsString(type)) return send_error(c, "bad_field", "'type' must be a string", ref_json);
        msg->type = type->valuestring;
    } else if (cJSON_GetObjectItemCaseSensitive(j.get(), "text")) {
        msg->type = "message";  // the seed's plain {"text": ...}
    } else {
        return send_error(c, "missing_type", "frame needs a 'type' (or a 'text' to post a message)", ref_json);
    }
    if (!spend_budget(c, msg->type, ref_json)) return;
    if (c->pending >= cfg_.limits.max_pending_per_conn) {
        m_.pending_refused->add(1);
        return send_error(c, "busy",
                          "too many requests in flight on this connection (" +
                              std::to_string(cfg_.limits.max_pending_per_conn) + "); wait for their answers",
                          ref_json);
    }
    msg->host = this;
    msg->conn = c->id;
    msg->payload.assign(text);
    msg->ref_json = std::move(ref_json);
    run_pipeline(std::move(msg), 0);
}

// Runs the rest of the pipeline, also for a connection that is closing or
// gone: its answers are dropped (enqueue), its message is not.
void Host::run_pipeline(std::unique_ptr<aurora_msg> msg, size_t from) {
    aurora_conn *c = find_conn(msg->conn);
    if (!c) return;
    for (size_t i = from; i < plugins_.size(); ++i) {
        aurora_plugin_ctx *p = plugins_[i].get();
        if (!p->hooks.on_message) continue;
        aurora_verdict v = timed(p, Hook::OnMessage, [&] { return p->hooks.on_message(p->state, c, msg.get()); });
        switch (v) {
        case AURORA_CONTINUE: continue;
        case AURORA_DROP: return;
        case AURORA_REPLY:
            if (msg->reply.empty()) {
                AURORA_HLOG(AURORA_LOG_WARN, c->id, "plugin %s returned REPLY without msg_set_reply", p->name.c_str());
            } else {
                enqueue(c, make_frame(msg->reply));
            }
            return;
        case AURORA_PENDING: {
            msg->next_plugin = i + 1;
            aurora_msg *raw = msg.get();
            pending_msgs_[raw] = std::move(msg);
            m_.pending_messages->add(1);
            ++c->pending;
            return;
        }
        default:
            AURORA_HLOG(AURORA_LOG_ERROR, c->id, "plugin %s returned invalid verdict %d; message dropped",
                        p->name.c_str(), v);
            return;
        }
    }
    m_.messages_unhandled->add(1);
    send_error(c, "unhandled", "no plugin handles messages of type '" + msg->type + "'", msg->ref_json);
}

void Host::resume(aurora_msg *raw, aurora_verdict verdict) {
    auto it = pending_msgs_.find(raw);
    if (it == pending_msgs_.end()) {
        AURORA_HLOG(AURORA_LOG_ERROR, 0, "msg_resume on a message that is not pending (resumed twice?)");
        return;
    }
    std::unique_ptr<aurora_msg> msg = std::move(it->second);
    pending_msgs_.erase(it);
    m_.pending_messages->add(-1);
    const aurora_conn_id id = msg->conn;
    if (aurora_conn *c = find_conn(id); c && c->pending > 0) --c->pending;
    switch (verdict) {
    case AURORA_CONTINUE: {
        size_t next = msg->next_plugin;
        run_pipeline(std::move(msg), next);
        break;
    }
    case AURORA_REPLY:
        if (aurora_conn *c = find_conn(id); c && !msg->reply.empty()) enqueue(c, make_frame(msg->reply));
        break;
    default: break;  // DROP, or nonsense: discard
    }
    // A connection that left meanwhile is let go once its last message is through.
    if (aurora_conn *c = find_conn(id); c && c->gone && c->pending == 0) finish_conn(c);
}

void Host::send_error(aurora_conn *c, std::string_view code, std::string_view message, std::string_view ref_json) {
    m_.frame_errors->add(1);
    std::string out = "{\"type\":\"error\",\"code\":";
    append_json_string(out, code);
    out += ",\"message\":";
    append_json_string(out, message);
    if (!ref_json.empty()) {
        out += ",\"ref\":";
        out += ref_json;
    }
    out += '}';
    enqueue(c, make_frame(out));
}

void Host::enqueue(aurora_conn *c, const OutFramePtr &f) {
    if (c->closing) return;
    const auto &L = cfg_.limits;
    if (c->outq.size() + 1 > L.send_queue_max_frames || c->out_bytes + f->len() > L.send_queue_max_bytes) {
        AURORA_HLOG(AURORA_LOG_WARN, c->id, "send queue over its bound (%zu frames, %zu bytes): closing with 1008",
                    c->outq.size(), c->out_bytes);
        close_conn(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "too slow: send queue over its bound", m_.closes_slow);
        return;
    }
    c->outq.push_back(f);
    c->out_bytes += f->len();
    mark_pending(c);
}

void Host::mark_pending(aurora_conn *c) {
    if (!c->write_pending && !c->awaiting_writable) {  // written before the loop sleeps
        c->write_pending = true;
        pending_writes_.push_back(c->id);
    }
}

// Drops the connection without a close frame, from outside an lws callback
// (where returning -1 is not possible): lws kills it at its next service,
// which the cancel brings forward (on libuv, lws re-arms its timer only after
// its own events).
void Host::drop_now(aurora_conn *c) {
    c->closing = true;
    c->dropped = true;
    c->outq.clear();
    c->out_bytes = 0;
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    lws_cancel_service(ctx_);
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
    if (++ticks_ % 5 == 0) trim_heap();
    const uint64_t now = uv_now(&loop_);
    const uint64_t interval = static_cast<uint64_t>(cfg_.ping_interval_s) * 1000;
    const uint64_t timeout = static_cast<uint64_t>(cfg_.ping_timeout_s) * 1000;
    std::vector<aurora_conn *> overdue;
    for (auto &[id, owned] : conns_) {
        aurora_conn *c = owned.get();
        if (c->gone && now - c->gone_ms >= kGoneGraceMs) overdue.push_back(c);
        if (c->closing) continue;
        if (c->ping_sent_ms == 0) {
            if (now - c->last_seen_ms < interval) continue;
            c->ping_sent_ms = now;
            c->ping_due = true;
            mark_pending(c);
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

void Host::close_conn(aurora_conn *c, uint16_t code, std::string_view reason, aurora_metric *counter,
                      bool flush) {
    if (c->closing) return;
    c->closing = true;
    c->close_code = code;
    c->close_reason.assign(reason.substr(0, 120));  // a close frame payload is at most 125 bytes
    if (!flush) {
        c->outq.clear();
        c->out_bytes = 0;
    }
    if (counter) counter->add(1);
    want_writable(c);
}

namespace {
// RFC 6455 §5.2 header of an unmasked, final text frame of `len` bytes,
// written to `out` (10 bytes of room); returns its length.
size_t ws_text_header(unsigned char *out, size_t len) {
    out[0] = 0x81;
    if (len < 126) {
        out[1] = static_cast<unsigned char>(len);
        return 2;
    }
    if (len <= 0xFFFF) {
        out[1] = 126;
        out[2] = static_cast<unsigned char>(len >> 8);
        out[3] = static_cast<unsigned char>(len);
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; ++i) out[2 + i] = static_cast<unsigned char>(uint64_t{len} >> (56 - 8 * i));
    return 10;
}
}  // namespace

// Sends the close frame here and lets lws drop the connection (after
// flushing what it still buffers), instead of lws_close_reason() and lws
// sending it on the next writable event: Debian's lws 4.1 is built with
// _DEBUG, whose libuv path closes a connection a second time straight after
// the first ("uv repeat test") and so kills it before that event comes.
int Host::close_now(lws *wsi, uint16_t code, std::string_view reason) {
    // RFC 6455 §5.5.1: an unmasked, final close frame; payload = code + reason, at most 125 bytes.
    unsigned char buf[LWS_PRE + 2 + 125];
    size_t n = std::min<size_t>(reason.size(), 123);
    unsigned char *f = buf + LWS_PRE;
    f[0] = 0x88;
    f[1] = static_cast<unsigned char>(n + 2);
    f[2] = static_cast<unsigned char>(code >> 8);
    f[3] = static_cast<unsigned char>(code);
    std::memcpy(f + 4, reason.data(), n);
    lws_write(wsi, f, n + 4, LWS_WRITE_RAW);  // a failure closes all the same
    return -1;
}

// The client's close frame (RFC 6455 §5.5.1, §7.4). A valid one is echoed
// with its code; one with a 1-byte payload, a code no endpoint may send, or
// a reason that is not UTF-8 is answered with 1002. Either way the TCP
// connection closes right after (lws would echo anything it did not rewrite).
int Host::on_peer_close(lws *wsi, const unsigned char *p, size_t len) {
    if (auto it = conn_by_wsi_.find(wsi); it != conn_by_wsi_.end()) it->second->closing = true;  // a client close
    if (len == 0) {  // no status: answer likewise
        unsigned char b[LWS_PRE + 2];
        b[LWS_PRE] = 0x88;
        b[LWS_PRE + 1] = 0;
        lws_write(wsi, b + LWS_PRE, 2, LWS_WRITE_RAW);
        return -1;
    }
    const uint16_t code = len >= 2 ? static_cast<uint16_t>(p[0] << 8 | p[1]) : 0;
    const bool code_ok = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) || (code >= 3000 && code <= 4999);
    const bool ok = len >= 2 && code_ok &&
                    valid_utf8(std::string_view(reinterpret_cast<const char *>(p) + 2, len - 2));
    if (!ok) m_.closes_protocol->add(1);
    return close_now(wsi, ok ? code : static_cast<uint16_t>(LWS_CLOSE_STATUS_PROTOCOL_ERR), ok ? "" : "malformed close frame");
}

int Host::on_ws_writeable(lws *wsi) {
    auto it = conn_by_wsi_.find(wsi);
    if (it == conn_by_wsi_.end()) return 0;
    aurora_conn *c = it->second;
    if (lws_get_close_length(wsi)) {
        // lws failed the connection (a protocol error: RSV bits, a bad opcode,
        // a bad continuation) and has written its 1002; it would then wait 5 s
        // for the client's echo (PENDING_TIMEOUT_CLOSE_ACK, ops-ws.c). Close now.
        if (!c->closing) m_.closes_protocol->add(1);
        c->closing = true;
        const unsigned char *cp = lws_get_close_payload(wsi);
        if (c->close_code == 0) c->close_code = static_cast<uint16_t>(cp[0] << 8 | cp[1]);
        return -1;
    }
    c->awaiting_writable = false;
    if (c->dropped) return -1;  // no close frame: lws's kill is on its way
    if (c->closing && c->outq.empty()) {
        if (c->close_code == 0) return -1;  // the peer closed; nothing to say
        return close_now(wsi, c->close_code, c->close_reason);
    }
    if (!write_queued(c)) return -1;
    if (!c->outq.empty() || c->closing) want_writable(c);  // more frames, or the close frame
    return 0;
}

void Host::want_writable(aurora_conn *c) {
    c->awaiting_writable = true;
    lws_callback_on_writable(c->wsi);
}

// Before the loop sleeps (a uv_prepare handle), every connection that got
// frames since is written to directly, as Redis does before it sleeps: one
// write per connection and no poll-set change while its socket keeps up.
// Only a connection whose socket is full (lws holds the rest of a write)
// waits for a writable event. Waiting for one for every delivery instead
// costs the epoll_ctl calls that libuv's uv_poll_start makes each time the
// interest changes (a delete and an add, twice per delivery).
void Host::flush_pending_writes() {
    if (pending_writes_.empty()) return;
    flushing_.swap(pending_writes_);
    for (aurora_conn_id id : flushing_) {
        aurora_conn *c = find_conn(id);
        if (!c) continue;
        c->write_pending = false;
        if (c->closing || c->awaiting_writable || (c->outq.empty() && !c->ping_due)) continue;
        if (lws_get_close_length(c->wsi)) {  // lws's protocol-error close is out: nothing may follow it
            c->closing = true;
            continue;
        }
        if (lws_partial_buffered(c->wsi)) {
            want_writable(c);
            continue;
        }
        if (!write_queued(c)) {
            drop_now(c);
            continue;
        }
        if (!c->outq.empty() || lws_partial_buffered(c->wsi)) want_writable(c);
    }
    flushing_.clear();
}

// One write of what waits in c's queue (up to about kCoalesceBytes). False
// when the write failed: the connection is to be closed.
bool Host::write_queued(aurora_conn *c) {
    const bool ping = c->ping_due;
    c->ping_due = false;
    if (!ping && c->outq.empty()) return true;
    if (!ping && c->outq.size() == 1) {  // a lone frame: written from its own buffer, lws adds the header
        OutFramePtr f = c->outq.pop_front();
        c->out_bytes -= f->len();
        if (lws_write(c->wsi, f->data(), f->len(), LWS_WRITE_TEXT) < 0) {
            AURORA_HLOG(AURORA_LOG_DEBUG, c->id, "write failed; closing");
            return false;
        }
        m_.frames_out->add(1);
        m_.bytes_out->add(static_cast<double>(f->len()));
        return true;
    }
    // Otherwise one buffer of complete WebSocket frames (unmasked, server to
    // client) and one write, instead of one syscall per frame: the heartbeat
    // ping first (with a payload: lws 4.1 drops empty pongs before the
    // callback), then the frames, or for aurora.ndjson clients one text frame
    // with a message per line. lws keeps what the socket does not take.
    // The payload starts after room for the longest header (10 bytes) and the
    // ping (4); the header, and the ping before it, go right in front of it
    // once its length is known, so each byte is copied once.
    constexpr size_t kHead = 10 + 4;
    coalesce_buf_.resize(LWS_PRE + kHead);
    size_t frames = 0, payload = 0;
    size_t start = LWS_PRE + kHead;  // first byte written
    if (c->ndjson && c->outq.size() >= 2) {
        while (!c->outq.empty() && coalesce_buf_.size() < kCoalesceBytes) {
            OutFramePtr f = c->outq.pop_front();
            c->out_bytes -= f->len();
            if (frames++) coalesce_buf_.push_back('\n');
            coalesce_buf_.insert(coalesce_buf_.end(), f->data(), f->data() + f->len());
        }
        payload = coalesce_buf_.size() - (LWS_PRE + kHead);
        unsigned char head[10];
        size_t h = ws_text_header(head, payload);
        start -= h;
        std::memcpy(coalesce_buf_.data() + start, head, h);
        m_.messages_batched->add(static_cast<double>(frames));
        frames = 1;
    } else {
        while (!c->outq.empty() && coalesce_buf_.size() < kCoalesceBytes) {
            OutFramePtr f = c->outq.pop_front();
            c->out_bytes -= f->len();
            unsigned char head[10];
            size_t h = ws_text_header(head, f->len());
            coalesce_buf_.insert(coalesce_buf_.end(), head, head + h);
            coalesce_buf_.insert(coalesce_buf_.end(), f->data(), f->data() + f->len());
            ++frames;
            payload += f->len();
        }
    }
    if (ping) {
        static constexpr unsigned char kPing[4] = {0x89, 0x02, 'h', 'b'};
        start -= sizeof kPing;
        std::memcpy(coalesce_buf_.data() + start, kPing, sizeof kPing);
    }
    size_t n = coalesce_buf_.size() - start;
    // lws returns the whole length once it has sent or buffered it; below
    // zero is a dead socket. (start is never below LWS_PRE.)
    if (lws_write(c->wsi, coalesce_buf_.data() + start, n, LWS_WRITE_RAW) < 0) {
        AURORA_HLOG(AURORA_LOG_DEBUG, c->id, "write failed; closing");
        return false;
    }
    m_.frames_out->add(static_cast<double>(frames));
    m_.bytes_out->add(static_cast<double>(payload));
    return true;
}

// ---- rooms ----

void Host::broadcast_local(std::string_view room, const OutFramePtr &f, aurora_conn_id except) {
    auto it = rooms_.find(std::string(room));
    if (it == rooms_.end()) return;
    // enqueue may close a member (slow consumer) but never removes it from
    // the room during this loop: removal happens in on_ws_closed.
    for (aurora_conn *c : it->second) {
        if (c->id != except) enqueue(c, f);
    }
}

aurora_status Host::room_join(aurora_conn *c, std::string_view room) {
    if (room.empty() || room.size() > 256) return AURORA_ERR_INVALID;
    if (c->gone) return AURORA_ERR_NOT_FOUND;
    if (room_has(c, room)) return AURORA_OK;
    if (c->rooms.size() >= cfg_.limits.max_rooms_per_conn) return AURORA_ERR_LIMIT;
    aurora_str r{room.data(), room.size()};
    for (auto &p : plugins_) {
        if (!p->hooks.on_join) continue;
        aurora_verdict v = timed(p.get(), Hook::OnJoin, [&] { return p->hooks.on_join(p->state, c, r); });
        if (v != AURORA_CONTINUE) {
            if (v != AURORA_DROP)
                AURORA_HLOG(AURORA_LOG_ERROR, c->id, "plugin %s: on_join returned %d (only CONTINUE or DROP): refused",
                            p->name.c_str(), v);
            return AURORA_ERR_DENIED;
        }
    }
    c->rooms.emplace_back(room);
    rooms_[std::string(room)].insert(c);
    return AURORA_OK;
}

aurora_status Host::room_leave(aurora_conn *c, std::string_view room) {
    auto pos = std::find(c->rooms.begin(), c->rooms.end(), room);
    if (pos == c->rooms.end()) return AURORA_ERR_NOT_FOUND;
    std::string name = std::move(*pos);
    c->rooms.erase(pos);
    if (auto it = rooms_.find(name); it != rooms_.end()) {
        it->second.erase(c);
        if (it->second.empty()) rooms_.erase(it);
    }
    aurora_str r{name.data(), name.size()};
    for (auto &p : plugins_) {
        if (p->hooks.on_leave) timed(p.get(), Hook::OnLeave, [&] { p->hooks.on_leave(p->state, c, r); });
    }
    return AURORA_OK;
}

bool Host::room_has(const aurora_conn *c, std::string_view room) const {
    return std::find(c->rooms.begin(), c->rooms.end(), room) != c->rooms.end();
}

uint32_t Host::room_size(std::string_view room) const {
    auto it = rooms_.find(std::string(room));
    return it == rooms_.end() ? 0 : static_cast<uint32_t>(it->second.size());
}

void *Host::conn_data(const aurora_plugin_ctx *p, const aurora_conn *c) const {
    return p->index < c->plugin_data.size() ? c->plugin_data[p->index] : nullptr;
}

void Host::set_conn_data(const aurora_plugin_ctx *p, aurora_conn *c, void *data) {
    if (p->index < c->plugin_data.size()) c->plugin_data[p->index] = data;
}

}  // namespace aurora::host
