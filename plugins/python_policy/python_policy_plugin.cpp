// python_policy: a moderation or routing policy written in Python, run by
// aurora-host as a message filter (docs/python.md).
//
//   {"name": "python_policy", "config": {"module": "profanity_policy",
//     "path": ["samples/python"], "fallback": "allow", "options": {"mode": "replace"}}}
//
// The module's on_message(msg) runs ON THE SERVICE THREAD, inside the GIL,
// for every message of the configured types: it must be fast (no I/O, no
// sleeping); every connection of the process waits while it runs.
//
// Verdicts: None / allow() -> CONTINUE; drop(reason) -> the sender gets
// {"type":"error","code":"policy","message":reason} (no reason: silent DROP);
// replace(text) -> the frame's "text" is replaced, then CONTINUE;
// reply(frame) -> REPLY with that frame. An exception is logged with its
// traceback, counted, and `fallback` decides (allow, or drop with an error).
#include <aurora/aurora.h>

#include <cjson/cJSON.h>

#include <memory>
#include <string>

#include "json.h"
#include "plugin_handle.h"
#include "policy_runtime.h"
#include "policy_settings.h"

namespace {

using aurora::policy::Decision;
using aurora::policy::MessageView;
using aurora::policy::Policy;
using aurora::policy::Settings;
using Json = std::unique_ptr<cJSON, decltype(&cJSON_Delete)>;

// Thread contract: written by init (main thread), then read by the hooks on
// the service thread; metrics are updated lock-free by the host.
struct State {
    const aurora_host_api *host = nullptr;
    aurora_plugin_ctx *self = nullptr;
    Settings settings;
    std::unique_ptr<Policy> policy;
    aurora_metric *allowed = nullptr, *dropped = nullptr, *replaced = nullptr, *replied = nullptr;
    aurora_metric *errors = nullptr, *seconds = nullptr;
};

std::string text_of(aurora_str s) { return s.ptr ? std::string(s.ptr, s.len) : std::string(); }

std::string print(const cJSON *j) {
    char *t = cJSON_PrintUnformatted(j);
    std::string out = t ? t : "{}";
    cJSON_free(t);
    return out;
}

aurora_status policy_init(const aurora_host_api *host, aurora_plugin_ctx *self, void **state_out) {
    auto st = std::make_unique<State>();
    st->host = host;
    st->self = self;
    std::string error;
    if (!aurora::policy::parse_settings(text_of(host->config_json(self)), st->settings, error)) {
        host->log_msg(self, AURORA_LOG_ERROR, "%s", error.c_str());
        return AURORA_ERR_INVALID;
    }
    st->policy = Policy::load(st->settings, error);
    if (!st->policy) {
        host->log_msg(self, AURORA_LOG_ERROR, "%s", error.c_str());
        return AURORA_ERR_INVALID;
    }
    st->allowed = host->metric_counter(self, "messages_total", "Messages judged by the policy", "verdict=\"allow\"");
    st->dropped = host->metric_counter(self, "messages_total", "Messages judged by the policy", "verdict=\"drop\"");
    st->replaced = host->metric_counter(self, "messages_total", "Messages judged by the policy", "verdict=\"replace\"");
    st->replied = host->metric_counter(self, "messages_total", "Messages judged by the policy", "verdict=\"reply\"");
    st->errors = host->metric_counter(self, "errors_total",
                                      "Policy calls that raised (the fallback verdict applied)", nullptr);
    st->seconds = host->metric_histogram(self, "call_seconds", "Time spent in the Python policy per call", nullptr,
                                         nullptr, 0);
    host->log_msg(self, AURORA_LOG_INFO, "policy module %s loaded (fallback %s)", st->settings.module.c_str(),
                  st->settings.fallback_drop ? "drop" : "allow");
    *state_out = st.release();
    return AURORA_OK;
}

void policy_shutdown(void *state) { delete static_cast<State *>(state); }

MessageView view_of(const State *st, aurora_conn *conn, aurora_str type, aurora_str payload, const cJSON *frame) {
    MessageView v;
    v.user = text_of(st->host->conn_username(conn));
    v.user_id = text_of(st->host->conn_user_id(conn));
    v.type = text_of(type);
    v.payload = text_of(payload);
    v.conn = st->host->conn_id(conn);
    const cJSON *room = cJSON_GetObjectItemCaseSensitive(frame, "room");
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(frame, "text");
    if (cJSON_IsString(room)) v.room = room->valuestring, v.has_room = true;
    if (cJSON_IsString(text)) v.text = text->valuestring, v.has_text = true;
    return v;
}

aurora_verdict apply(State *st, aurora_msg *msg, aurora_conn_id conn, const Decision &d, cJSON *frame) {
    const aurora_host_api *h = st->host;
    switch (d.kind) {
    case Decision::Kind::Allow:
        h->metric_add(st->allowed, 1);
        return AURORA_CONTINUE;
    case Decision::Kind::Drop: {
        h->metric_add(st->dropped, 1);
        if (d.text.empty()) return AURORA_DROP;
        return h->msg_reply_error(msg, "policy", d.text.c_str()) == AURORA_OK ? AURORA_REPLY : AURORA_DROP;
    }
    case Decision::Kind::Replace: {
        h->metric_add(st->replaced, 1);
        aurora::plugin::delete_all(frame, "text");  // every copy (a raw message has not been through the host's check)
        cJSON_AddStringToObject(frame, "text", d.text.c_str());
        std::string out = print(frame);
        h->msg_set_payload(msg, aurora_str{out.data(), out.size()});
        return AURORA_CONTINUE;
    }
    case Decision::Kind::Reply:
        h->metric_add(st->replied, 1);
        if (h->msg_set_reply(msg, aurora_str{d.text.data(), d.text.size()}) == AURORA_OK) return AURORA_REPLY;
        h->log_conn(st->self, AURORA_LOG_ERROR, conn, "reply(...) is not a JSON object: %s", d.text.c_str());
        break;  // a bad reply is the policy's error: fall back
    case Decision::Kind::Error:
        h->log_conn(st->self, AURORA_LOG_ERROR, conn, "policy %s raised; fallback %s:\n%s",
                    st->settings.module.c_str(), st->settings.fallback_drop ? "drop" : "allow", d.text.c_str());
        break;
    }
    h->metric_add(st->errors, 1);
    if (!st->settings.fallback_drop) return AURORA_CONTINUE;
    return h->msg_reply_error(msg, "policy_error", "the message was refused") == AURORA_OK ? AURORA_REPLY : AURORA_DROP;
}

aurora_verdict policy_on_message(void *state, aurora_conn *conn, aurora_msg *msg) {
    auto *st = static_cast<State *>(state);
    const aurora_host_api *h = st->host;
    aurora_str type = h->msg_type(msg);
    if (!st->settings.types.count(text_of(type))) return AURORA_CONTINUE;
    aurora_str payload = h->msg_payload(msg);
    Json frame(cJSON_ParseWithLength(payload.ptr, payload.len), cJSON_Delete);
    if (!cJSON_IsObject(frame.get())) return AURORA_CONTINUE;  // the host checked; defensive
    MessageView view = view_of(st, conn, type, payload, frame.get());
    uint64_t t0 = h->now_monotonic_ns();
    Decision d = st->policy->on_message(view);
    h->metric_observe(st->seconds, static_cast<double>(h->now_monotonic_ns() - t0) / 1e9);
    return apply(st, msg, view.conn, d, frame.get());
}

aurora_verdict policy_on_join(void *state, aurora_conn *conn, aurora_str room) {
    auto *st = static_cast<State *>(state);
    if (!st->policy->has_on_join()) return AURORA_CONTINUE;
    MessageView v;
    v.user = text_of(st->host->conn_username(conn));
    v.user_id = text_of(st->host->conn_user_id(conn));
    v.type = "join";
    v.room = text_of(room);
    v.has_room = true;
    v.conn = st->host->conn_id(conn);
    std::string error;
    int admit = st->policy->on_join(v, error);
    if (admit >= 0) return admit ? AURORA_CONTINUE : AURORA_DROP;
    st->host->log_conn(st->self, AURORA_LOG_ERROR, v.conn, "policy %s on_join raised; fallback %s:\n%s",
                       st->settings.module.c_str(), st->settings.fallback_drop ? "drop" : "allow", error.c_str());
    st->host->metric_add(st->errors, 1);
    return st->settings.fallback_drop ? AURORA_DROP : AURORA_CONTINUE;
}

const aurora_plugin kDescriptor = [] {
    aurora_plugin d = aurora::plugin::describe("python_policy", "1.0.0",
                                       "message policy written in Python (embedded CPython)");
    d.init = policy_init;
    d.shutdown = policy_shutdown;
    d.on_join = policy_on_join;
    d.on_message = policy_on_message;
    return d;
}();

}  // namespace

extern "C" AURORA_EXPORT const aurora_plugin *aurora_plugin_entry(void) { return &kDescriptor; }
