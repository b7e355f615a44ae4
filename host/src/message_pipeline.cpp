// The message pipeline: a complete message from a client through the frame
// budgets and the checks, then through each plugin's on_message in order,
// to a reply, an error, or a plugin that holds it (PENDING) until it resumes
// it from any thread. [service]
#include <algorithm>

#include "frame_check.h"
#include "host.h"
#include "json_text.h"
#include "log.h"

namespace aurora::host {

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
        // The rate_limited answers already queued go out first: they say why
        // (bounded: at most frames_burst of them since the last frame served).
        close_conn(c, ws::kPolicy, "flood: frames over budget", m_.closes_flood, true);
        return false;
    }
    std::string out = "{\"type\":\"rate_limited\",\"retry_after_ms\":" + std::to_string(retry) + ",\"limit\":";
    append_json_string(out, limit);
    if (!ref_json.empty()) out += ",\"ref\":" + std::string(ref_json);
    out += '}';
    enqueue(c, make_frame(out));
    return false;
}

// A complete data message (ws_connection.cpp assembled and checked it).
void Host::handle_message(aurora_conn *c) {
    m_.frames_in->add(1);
    bool too_large = c->rx_too_large, binary = c->rx_binary;
    std::string text = std::move(c->rx);
    c->rx.clear();
    c->rx_total = 0;
    c->rx_too_large = false;
    c->rx_binary = false;
    if (!spend_budget(c, {}, {})) return;
    static constexpr const char *kNoBinary = "binary frames are not supported; send JSON text frames";
    if (binary && !raw_plugins_) {
        send_error(c, "binary_not_supported", kNoBinary, {});
    } else if (too_large) {
        send_error(c, "too_large", "frame larger than " + std::to_string(cfg_.limits.max_frame_bytes) + " bytes", {});
    } else if (binary) {
        handle_raw(c, std::move(text), true, "binary_not_supported", kNoBinary);
    } else {
        handle_frame(c, text);
    }
}

void Host::handle_frame(aurora_conn *c, std::string_view text) {
    FrameCheck f = check_frame(text);
    if (f.error && raw_plugins_)
        return handle_raw(c, std::string(text), false, f.error, f.message, std::move(f.ref_json));
    if (f.error) return send_error(c, f.error, f.message, f.ref_json);
    auto msg = std::make_unique<aurora_msg>();
    msg->type = std::move(f.type);
    std::string ref_json = std::move(f.ref_json);
    if (!spend_budget(c, msg->type, ref_json)) return;
    if (refuse_if_busy(c, ref_json)) return;
    msg->host = this;
    msg->conn = c->id;
    msg->payload.assign(text);
    msg->ref_json = std::move(ref_json);
    run_pipeline(std::move(msg), 0);
}

// limits.max_pending_per_conn: a connection with that many messages held
// PENDING by plugins gets "busy" for the next one.
bool Host::refuse_if_busy(aurora_conn *c, std::string_view ref_json) {
    if (c->pending < cfg_.limits.max_pending_per_conn) return false;
    m_.pending_refused->add(1);
    send_error(c, "busy",
               "too many requests in flight on this connection (" +
                   std::to_string(cfg_.limits.max_pending_per_conn) + "); wait for their answers",
               ref_json);
    return true;
}

void Host::handle_raw(aurora_conn *c, std::string text, bool binary, const char *refusal, std::string message,
                      std::string refusal_ref) {
    if (refuse_if_busy(c, {})) return;
    auto msg = std::make_unique<aurora_msg>();
    msg->host = this;
    msg->conn = c->id;
    msg->payload = std::move(text);
    msg->raw = true;
    msg->binary = binary;
    msg->refusal = refusal;
    msg->refusal_message = std::move(message);
    msg->refusal_ref = std::move(refusal_ref);
    run_pipeline(std::move(msg), 0);
}

// Runs the rest of the pipeline, also for a connection that is closing or
// gone: its answers are dropped (enqueue), its message is not.
void Host::run_pipeline(std::unique_ptr<aurora_msg> msg, size_t from) {
    aurora_conn *c = find_conn(msg->conn);
    if (!c) return;
    for (size_t i = from; i < plugins_.size(); ++i) {
        aurora_plugin_ctx *p = plugins_.at(i);
        if (!p->hooks.on_message || (msg->raw && !p->raw_messages)) continue;
        aurora_verdict v = PluginSet::timed(p, Hook::OnMessage, [&] { return p->hooks.on_message(p->state, c, msg.get()); });
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
    if (msg->raw) return send_error(c, msg->refusal, msg->refusal_message, msg->refusal_ref);
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
    enqueue(c, make_frame(error_frame(code, message, ref_json)));
}

}  // namespace aurora::host
