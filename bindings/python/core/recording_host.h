// A host-API implementation that records what a plugin does, for
// aurora.Plugin: one plugin .so loaded in-process through the host's own
// loader (PluginLibrary), driven hook by hook by a test script.
//
// THREAD CONTRACT
//   - The "service thread" is the thread that loaded the plugin. Only it
//     drives hooks (authenticate, connect, message, join, http, ...), runs
//     the calls queued with call_on_service, and may call the host's
//     service-thread functions (room_join, conn_get_data, ...); from any
//     other thread those return AURORA_ERR_WRONG_THREAD, as in aurora-host.
//   - Plugin threads (host->spawn, or their own) may call every "any thread"
//     function: send, broadcast, close, msg_resume, http_reply, log, metrics,
//     call_on_service. Those take `mu_`, record, and notify `cv_`.
//   - `mu_` guards events_, pending messages and HTTP requests, metric values,
//     the call queue and the listener. Connections and rooms are [service].
//   - No Python here: the listener is a std::function that the bindings wrap
//     (taking the GIL). The bindings release the GIL around every call into
//     the plugin and around every wait.
#pragma once

#include <aurora/aurora.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "config.h"  // aurora::host::Limits: the host's defaults
#include "recording_loop.h"

namespace aurora::host {
class PluginLibrary;
}

namespace aurora::py {

class RecordingHost;

// One thing the plugin did, in the order it did it.
struct Event {
    std::string kind;       // send broadcast close log join leave resume http_reply
    uint64_t conn = 0;      // send/close/log/join/leave/resume: the connection; broadcast: except
    std::string room;       // broadcast/join/leave
    std::string payload;    // send/broadcast: the frame; log: the line; close: reason; http_reply: body
    int64_t code = 0;       // close: close code; log: level; resume: verdict; http_reply: status
    uint64_t thread = 0;    // a small number per OS thread (0 = the service thread)
    std::vector<uint64_t> to;  // broadcast: the room's members when the service thread delivered it
};

// [service] A synthetic WebSocket connection.
struct FakeConn {
    aurora_conn_id id = 0;
    std::string user_id, username, remote_addr;
    void *data = nullptr;  // conn_set_data (one plugin)
    std::set<std::string> rooms;
};

// A message in the pipeline. Shared by the bindings' Message object and,
// while PENDING, by the host (the plugin owns it until msg_resume).
struct FakeMsg {
    RecordingHost *host = nullptr;
    aurora_conn_id conn = 0;
    std::string type, payload, reply;  // payload/reply: [service] or the owning plugin thread
    std::string ref_json;              // "ref" as the host echoes it, or empty
    bool binary = false;               // came as a binary message (bytes from Python)
    // guarded by host->mu_
    bool pending = false;
    bool resumed = false;
    aurora_verdict verdict = AURORA_CONTINUE;
};

struct FakeHandshake {
    std::map<std::string, std::string> headers;  // lower-case names
    std::map<std::string, std::string> query;
    std::string path = "/", token, remote_addr = "127.0.0.1";
};

struct FakeHttpReq {
    RecordingHost *host = nullptr;
    std::string method, path, body, remote_addr = "127.0.0.1";
    std::map<std::string, std::string> headers;  // lower-case names
    std::map<std::string, std::string> query;
    // guarded by host->mu_
    bool replied = false;
    uint16_t status = 0;
    std::string content_type, extra_headers, reply_body;
};

struct FakeWorker {
    RecordingHost *host = nullptr;
    std::string name;
    aurora_worker_fn fn = nullptr;
    void *arg = nullptr;
    std::thread thread;
    std::atomic<bool> stop{false};
    std::mutex mu;
    std::condition_variable cv;
    bool woken = false;  // guarded by mu
};

struct FakeMetric {
    std::string kind;  // counter gauge histogram
    std::string name, help, labels;
    double value = 0;     // counter/gauge; histogram: sum
    uint64_t count = 0;   // histogram observations
};

struct Route {
    std::string method, path;
    bool prefix = false;
    aurora_http_handler handler = nullptr;
    void *userdata = nullptr;
    uint64_t max_body_bytes = 0;  // http_route_limits; 0: aurora-host's default, 64 KiB
};

struct AuthResult {
    aurora_auth_verdict verdict = AURORA_AUTH_ABSTAIN;
    std::string user_id, username, reason;
    uint32_t status = 0;
};

class RecordingHost {
public:
    // Loads and checks `path` with the host's loader, then runs init.
    // Throws LoadError (loader refusal) or InitError (init failed).
    struct LoadError : std::runtime_error { using std::runtime_error::runtime_error; };
    struct InitError : std::runtime_error { using std::runtime_error::runtime_error; };

    RecordingHost(const std::string &path, std::string config_json, std::map<std::string, std::string> settings,
                  std::string instance_name);
    ~RecordingHost();
    RecordingHost(const RecordingHost &) = delete;
    RecordingHost &operator=(const RecordingHost &) = delete;

    const aurora_plugin &hooks() const;
    std::string abi_version() const;
    const std::string &path() const { return path_; }
    const std::string &instance_name() const { return name_; }
    bool closed() const { return closed_; }

    // ---- driving the hooks (service thread) ----
    AuthResult authenticate(const FakeHandshake &hs);
    aurora_conn_id connect(const std::string &user_id, const std::string &username, const std::string &addr);
    void disconnect(aurora_conn_id id);
    aurora_status join(aurora_conn_id id, const std::string &room);
    aurora_status leave(aurora_conn_id id, const std::string &room);
    std::set<std::string> rooms_of(aurora_conn_id id) const;
    std::set<aurora_conn_id> members(const std::string &room) const;
    std::shared_ptr<FakeMsg> message(aurora_conn_id id, const std::string &payload, const std::string &type,
                                     const std::string &ref_json = {}, bool binary = false);
    std::shared_ptr<FakeHttpReq> http(std::shared_ptr<FakeHttpReq> req);  // nullptr req->status 404 if no route
    int32_t is_ready();
    // Runs the calls queued with call_on_service. Returns how many ran.
    size_t run_queued_calls();
    // Waits (running queued calls meanwhile) until pred() holds under mu_,
    // or the timeout. Returns pred().
    bool wait_until(const std::function<bool()> &pred, double timeout_s);
    // Stops the workers (joins them), runs the queued calls, calls shutdown.
    void close();

    // ---- what was recorded (any thread) ----
    std::vector<Event> events() const;
    std::vector<FakeMetric> metrics() const;
    std::vector<Route> routes() const { return routes_; }
    size_t count(const std::string &kind) const;
    const std::vector<Event> &events_unlocked() const { return events_; }  // with mu_ held
    void set_listener(std::function<void(const Event &)> listener);
    // Called on a thread that is not the service thread, when true: only the
    // bindings know whether the interpreter can still be entered.
    bool on_service_thread() const { return std::this_thread::get_id() == service_; }

    // ---- the table's implementation (see recording_host.cpp) ----
    static const aurora_host_api *api();
    void record(Event e, bool thread_known = false);
    // The error log line of a call refused off the service thread, as aurora-host writes it.
    void record_refusal(const char *fn);
    uint64_t thread_number();  // 0 on the service thread
    std::mutex mu_;
    std::condition_variable cv_;
    std::map<std::string, std::string> settings_;
    std::string config_json_;
    bool in_init_ = false;
    RecordingLoop loop_{this};  // ABI 1.2: descriptors, timers, before-sleep calls
    bool raw_messages_ = false;  // the plugin called accept_raw_messages in init
    // aurora-host's limits.max_rooms_per_conn (its default): room_join past it
    // is AURORA_ERR_LIMIT, as in the host. Plugin.max_rooms_per_conn sets it.
    size_t max_rooms_per_conn_ = aurora::host::Limits{}.max_rooms_per_conn;
    bool accepting_calls_ = true;  // guarded by mu_
    std::deque<std::function<void()>> calls_;  // guarded by mu_; one FIFO, as in aurora-host
    std::vector<std::unique_ptr<FakeWorker>> workers_;      // [main]
    std::vector<std::unique_ptr<FakeMetric>> metric_store_;  // registered in init; values under mu_
    std::vector<Route> routes_;                              // [main]
    std::map<aurora_conn_id, std::unique_ptr<FakeConn>> conns_;  // [service]
    std::set<std::shared_ptr<FakeMsg>> pending_;                 // guarded by mu_
    std::set<std::shared_ptr<FakeHttpReq>> open_requests_;       // guarded by mu_
    FakeConn *find_conn(aurora_conn_id id);
    aurora_status room_join_impl(FakeConn *c, const std::string &room);
    aurora_status room_leave_impl(FakeConn *c, const std::string &room);

private:
    std::string path_, name_;
    std::unique_ptr<aurora::host::PluginLibrary> lib_;
    void *state_ = nullptr;
    bool initialized_ = false;
    bool closed_ = false;
    std::thread::id service_;
    aurora_conn_id next_conn_ = 1;
    std::vector<Event> events_;  // guarded by mu_
    std::function<void(const Event &)> listener_;  // guarded by mu_
    std::map<std::thread::id, uint64_t> thread_numbers_;  // guarded by mu_
};

// The ABI 1.2 entries of the recording host's table (recording_loop_api.cpp).
void fill_loop_api(aurora_host_api &a);

const char *verdict_name(aurora_verdict v);
const char *status_name(aurora_status s);

}  // namespace aurora::py
