#include "worker_pool.h"

#include <algorithm>
#include <chrono>
#include <exception>

namespace aurora::auth {

WorkerPool::WorkerPool(const aurora_host_api *host, aurora_plugin_ctx *self, plugin::RedisUrl redis,
                       LaneLimits limits, Tick tick, uint32_t tick_ms)
    : host_(host), self_(self), redis_url_(std::move(redis)), limits_(limits), tick_(std::move(tick)),
      tick_ms_(tick_ms) {}

aurora_status WorkerPool::start(int n) {
    for (int i = 0; i < n; ++i) {
        slots_.push_back(std::make_unique<Slot>(Slot{this, static_cast<size_t>(i)}));
        const std::string name = "auth-" + std::to_string(i);
        aurora_status rc = host_->spawn(self_, name.c_str(), worker_main, slots_.back().get());
        if (rc != AURORA_OK) return rc;
    }
    return AURORA_OK;
}

bool WorkerPool::post(Job job, Lane lane) {
    std::lock_guard lock(mu_);
    std::deque<Job> &q = lane == Lane::Main ? main_ : bulk_;
    if (stopped_ || q.size() >= (lane == Lane::Main ? limits_.main_max_queue : limits_.bulk_max_queue)) return false;
    q.push_back(std::move(job));
    // Wake every worker: an idle one takes the job, a busy one finds the
    // queue empty later; worker_wake never loses a wake-up. Under mu_, because
    // a worker leaves workers_ (under mu_) before its handle becomes invalid.
    for (aurora_worker *w : workers_) host_->worker_wake(w);
    return true;
}

bool WorkerPool::pop(Job &job, Lane &lane, bool draining) {
    std::lock_guard lock(mu_);
    if (!main_.empty()) {
        lane = Lane::Main;
        job = std::move(main_.front());
        main_.pop_front();
        return true;
    }
    if (bulk_.empty() || (!draining && bulk_running_ >= limits_.bulk_max_running)) return false;
    lane = Lane::Bulk;
    ++bulk_running_;
    job = std::move(bulk_.front());
    bulk_.pop_front();
    return true;
}

void WorkerPool::finished(Lane lane) {
    if (lane != Lane::Bulk) return;
    // No wake-up needed: this worker looks at the queues again right away.
    std::lock_guard lock(mu_);
    --bulk_running_;
}

void WorkerPool::run_guarded(const Job &job, WorkerContext &ctx) {
    try {
        job(ctx);
    } catch (const std::exception &e) {
        host_->log_msg(self_, AURORA_LOG_ERROR, "worker %zu: job failed: %s", ctx.index, e.what());
    } catch (...) {
        host_->log_msg(self_, AURORA_LOG_ERROR, "worker %zu: job failed with an unknown exception", ctx.index);
    }
}

void WorkerPool::worker_main(aurora_worker *w, void *arg) {
    auto *slot = static_cast<Slot *>(arg);
    slot->pool->run(w, slot->index);
}

void WorkerPool::run(aurora_worker *w, size_t index) {
    {
        std::lock_guard lock(mu_);
        workers_.push_back(w);
    }
    WorkerContext ctx{index, plugin::RedisConnection(redis_url_, std::chrono::milliseconds(1000)), false};
    using Clock = std::chrono::steady_clock;
    auto next_tick = Clock::now();
    auto maybe_tick = [&] {
        if (index != 0 || !tick_ || Clock::now() < next_tick) return;
        run_guarded(tick_, ctx);
        next_tick = Clock::now() + std::chrono::milliseconds(tick_ms_);
    };
    while (!host_->worker_should_stop(w)) {
        Job job;
        Lane lane;
        if (pop(job, lane, false)) {
            run_guarded(job, ctx);
            job = nullptr;  // captures (responder, in-flight ticket) go with the job
            finished(lane);
            maybe_tick();
            continue;
        }
        maybe_tick();
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next_tick - Clock::now()).count();
        uint32_t wait = index == 0 ? static_cast<uint32_t>(std::clamp<long long>(left, 1, 1000)) : 1000;
        host_->worker_wait(w, wait);
    }
    // Stop: refuse new jobs, then finish the queued ones quickly.
    {
        std::lock_guard lock(mu_);
        stopped_ = true;
        workers_.erase(std::remove(workers_.begin(), workers_.end(), w), workers_.end());
    }
    ctx.stopping = true;
    Job job;
    Lane lane;
    while (pop(job, lane, true)) {
        run_guarded(job, ctx);
        job = nullptr;
        finished(lane);
    }
}

}  // namespace aurora::auth
