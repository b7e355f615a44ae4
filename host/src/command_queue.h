// The one way other threads reach the service thread: a queue of commands.
//
// THREADS
//   - post: any thread. Whoever finds the queue empty wakes the loop
//     (lws_cancel_service), so a burst costs one wake-up; the service thread
//     takes the whole queue at once (take) on LWS_CALLBACK_EVENT_WAIT_CANCELLED.
//   - count_into, attach, take, refuse, close: the thread that owns the host
//     (main, then service). count_into comes before any plugin thread exists.
//   - Once refusing (the context is going away), post refuses with
//     AURORA_ERR_CLOSED and never touches the context again.
#pragma once

#include <aurora/host_api.h>

#include <mutex>
#include <string>
#include <vector>

#include "front_door.h"
#include "metrics.h"

struct lws_context;

namespace aurora::host {

struct OutFrame;

// A unit of work handed to the service thread.
struct Command {
    enum class Kind { Send, Broadcast, Close, Resume, HttpReply, Adopt, Call } kind;
    explicit Command(Kind k) : kind(k) {}
    aurora_conn_id conn = 0;
    std::string room;
    std::shared_ptr<OutFrame> frame;
    uint16_t code = 0;
    std::string text;  // close reason
    aurora_msg *msg = nullptr;
    aurora_verdict verdict = AURORA_DROP;
    aurora_http_req *req = nullptr;
    uint16_t status = 0;
    std::string content_type, extra_headers, body;
    Arrival arrival;  // Adopt: a connection from the front door
    void (*fn)(void *) = nullptr;  // Call
    void *arg = nullptr;
};

class CommandQueue {
public:
    void count_into(aurora_metric *posted) { posted_ = posted; }  // before any other thread posts
    void attach(lws_context *ctx);  // the context to wake

    aurora_status post(Command cmd);
    // Wakes the loop if the queue is still open (a stop request).
    void wake();
    std::vector<Command> take();
    // From now on post refuses; what is queued stays for close().
    void refuse();
    // From now on post refuses. Returns what was still queued.
    std::vector<Command> close();

private:
    std::mutex mu_;
    std::vector<Command> queue_;  // guarded by mu_
    bool open_ = true;            // guarded by mu_
    lws_context *ctx_ = nullptr;  // guarded by mu_
    aurora_metric *posted_ = nullptr;  // set before other threads exist
};

}  // namespace aurora::host
