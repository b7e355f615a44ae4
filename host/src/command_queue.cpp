// Commands from other threads to the service thread.
#include "command_queue.h"

#include <uv.h>
#include <libwebsockets.h>

#include "conn.h"

namespace aurora::host {

void CommandQueue::attach(lws_context *ctx) {
    std::lock_guard lock(mu_);
    ctx_ = ctx;
}

aurora_status CommandQueue::post(Command cmd) {
    {
        std::lock_guard lock(mu_);
        if (!open_) return AURORA_ERR_CLOSED;
        const bool wake = queue_.empty();
        queue_.push_back(std::move(cmd));
        // One wake-up per batch: whoever finds the queue empty wakes the loop;
        // the loop takes the whole queue at once.
        if (wake && ctx_) lws_cancel_service(ctx_);
    }
    if (posted_) posted_->add(1);
    return AURORA_OK;
}

void CommandQueue::wake() {
    std::lock_guard lock(mu_);
    if (open_ && ctx_) lws_cancel_service(ctx_);
}

std::vector<Command> CommandQueue::take() {
    std::vector<Command> batch;
    std::lock_guard lock(mu_);
    batch.swap(queue_);
    return batch;
}

void CommandQueue::refuse() {
    std::lock_guard lock(mu_);
    open_ = false;
}

std::vector<Command> CommandQueue::close() {
    std::vector<Command> left;
    std::lock_guard lock(mu_);
    open_ = false;
    left.swap(queue_);
    return left;
}

}  // namespace aurora::host
