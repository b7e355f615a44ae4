#include "worker_pool.h"

#include <algorithm>
#include <chrono>
#include <exception>

namespace aurora::auth {

WorkerPool::WorkerPool(const aurora_host_api *host, aurora_plugin_ctx *self, plugin::RedisUrl redis,
                       LaneLimits limits, Tick tick, uint32_t tick_ms)
    : host_(host), self_(self), redis_url_(std::move(redis)), limits_(limits), tick_(std::move(tick)),
      tick_ms_(tick_ms), main_(host, limits.main_max_queue), bulk_(host, limits.bulk_max_queue) {}

aurora_status WorkerPool::start(int n) {
    for (int i = 0; i < n; ++i) {
        slots_.push_back(std::make_unique<Slot>(Slot{this, static_cast<size_t>(i)}));
        const std::string name = "auth-" + std::to_string(i);
        aurora_status rc = host_->spawn(self_, name.c_str(), worker_main, slots_.back().get());
        if (rc != AURORA_OK) return rc;
    }
    return AURORA_OK;
}

bool WorkerPool::post(Job job, Lane lane) { return (lane == Lane::Main ? main_ : bulk_).post(std::move(job)); }

bool WorkerPool::pop(Job &job, Lane &lane) {
    if (std::optional<Job> j = main_.pop()) {
        lane = Lane::Main;
        job = std::move(*j);
        return true;
    }
    size_t running = bulk_running_.load();
    do {
        if (running >= limits_.bulk_max_running) return false;
    } while (!bulk_running_.compare_exchange_weak(running, running + 1));
    if (std::optional<Job> j = bulk_.pop()) {
        lane = Lane::Bulk;
        job = std::move(*j);
        return true;
    }
    --bulk_running_;
    return false;
}

void WorkerPool::finished(Lane lane) {
    // No wake-up needed: this worker looks at the queues again right away.
    if (lane == Lane::Bulk) --bulk_running_;
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
    WorkerContext ctx{index, plugin::RedisRouter(redis_url_, std::chrono::milliseconds(1000)), false};
    using Clock = std::chrono::steady_clock;
    auto next_tick = Clock::now();
    auto maybe_tick = [&] {
        if (index != 0 || !tick_ || Clock::now() < next_tick) return;
        run_guarded(tick_, ctx);
        next_tick = Clock::now() + std::chrono::milliseconds(tick_ms_);
    };
    {
        plugin::JobQueue<Job>::Attach on_main(main_, w), on_bulk(bulk_, w);
        while (!host_->worker_should_stop(w)) {
            Job job;
            Lane lane;
            if (pop(job, lane)) {
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
    }
    // Stop: refuse new jobs, then finish the queued ones quickly (Main first).
    ctx.stopping = true;
    for (plugin::JobQueue<Job> *lane : {&main_, &bulk_}) {
        for (Job &job : lane->close()) {
            run_guarded(job, ctx);
            job = nullptr;
        }
    }
}

}  // namespace aurora::auth
