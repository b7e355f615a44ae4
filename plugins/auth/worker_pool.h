// The plugin's worker threads (host->spawn): two FIFOs of jobs shared by N
// threads, each with its own Redis connection (DESIGN §3: one connection per
// thread). Password hashing, MongoDB and Redis I/O all run here, never on the
// service thread. Worker 0 also runs a periodic tick (index creation retries,
// connection-cap refreshes).
//
// Two lanes, so that a flood of one kind of slow job cannot starve the rest:
// - Main (logins, connection-cap checks): served first, by every worker;
// - Bulk (registrations): taken only when Main is empty, and by at most
//   `bulk_max_running` workers at once; with fewer than `workers` a worker
//   is always free for Main. Each lane has its own queue bound, so a full
//   Bulk lane refuses registrations (503) while logins are still queued.
//
// Thread contract: each lane is a JobQueue (its own lock); `bulk_running_`
// is an atomic; post() may be called from any thread; a job runs on
// exactly one worker. At shutdown the lanes are closed (post refuses) and
// what they held runs with ctx.stopping = true, ignoring the Bulk cap, so
// every job runs (and every HTTP request gets its reply) before the host
// joins the threads.
#pragma once

#include <aurora/aurora.h>

#include <atomic>
#include <functional>
#include <memory>
#include <vector>

#include "job_queue.h"
#include "redis_router.h"

namespace aurora::auth {

struct WorkerContext {
    size_t index = 0;
    plugin::RedisRouter redis;  // the one connection, or a cluster's masters
    bool stopping = false;  // the host is shutting down: answer fast, skip slow work
};

using Job = std::function<void(WorkerContext &)>;

enum class Lane { Main, Bulk };

struct LaneLimits {
    size_t main_max_queue = 1024;  // jobs waiting in Main before post() refuses
    size_t bulk_max_queue = 64;    // jobs waiting in Bulk before post() refuses
    size_t bulk_max_running = 1;   // Bulk jobs running at once
};

class WorkerPool {
public:
    using Tick = std::function<void(WorkerContext &)>;

    WorkerPool(const aurora_host_api *host, aurora_plugin_ctx *self, plugin::RedisUrl redis, LaneLimits limits,
               Tick tick, uint32_t tick_ms);
    WorkerPool(const WorkerPool &) = delete;
    WorkerPool &operator=(const WorkerPool &) = delete;

    // Main thread, during init: starts `n` workers.
    aurora_status start(int n);
    // Any thread. False when the lane's queue is full or the pool is stopping
    // (the job is not run; the caller answers "unavailable").
    bool post(Job job, Lane lane = Lane::Main);

private:
    struct Slot {
        WorkerPool *pool;
        size_t index;
    };
    static void worker_main(aurora_worker *w, void *arg);
    void run(aurora_worker *w, size_t index);
    // The next job: Main first, then Bulk under its cap.
    bool pop(Job &job, Lane &lane);
    void finished(Lane lane);
    void run_guarded(const Job &job, WorkerContext &ctx);

    const aurora_host_api *host_;
    aurora_plugin_ctx *self_;
    plugin::RedisUrl redis_url_;
    LaneLimits limits_;
    Tick tick_;
    uint32_t tick_ms_;
    std::vector<std::unique_ptr<Slot>> slots_;  // written in start() only

    plugin::JobQueue<Job> main_, bulk_;
    std::atomic<size_t> bulk_running_{0};
};

}  // namespace aurora::auth
