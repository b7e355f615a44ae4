// The plugin's worker threads (host->spawn): a FIFO of jobs shared by N
// threads, each with its own Redis connection (DESIGN §3: one connection per
// thread). Password hashing, MongoDB and Redis I/O all run here, never on the
// service thread. Worker 0 also runs a periodic tick (index creation retries,
// connection-cap refreshes).
//
// Thread contract: the queue, `stopped_` and `workers_` are guarded by `mu_`;
// post() may be called from any thread; a job runs on exactly one worker.
// At shutdown each worker drains what is queued with ctx.stopping = true, so
// every job runs (and every HTTP request gets its reply) before the host
// joins the threads.
#pragma once

#include <aurora/aurora.h>

#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "redis_connection.h"

namespace aurora::auth {

struct WorkerContext {
    size_t index = 0;
    plugin::RedisConnection redis;
    bool stopping = false;  // the host is shutting down: answer fast, skip slow work
};

using Job = std::function<void(WorkerContext &)>;

class WorkerPool {
public:
    using Tick = std::function<void(WorkerContext &)>;

    WorkerPool(const aurora_host_api *host, aurora_plugin_ctx *self, plugin::RedisUrl redis, size_t max_queue,
               Tick tick, uint32_t tick_ms);
    WorkerPool(const WorkerPool &) = delete;
    WorkerPool &operator=(const WorkerPool &) = delete;

    // Main thread, during init: starts `n` workers.
    aurora_status start(int n);
    // Any thread. False when the queue is full or the pool is stopping (the
    // job is not run; the caller answers "unavailable").
    bool post(Job job);

private:
    struct Slot {
        WorkerPool *pool;
        size_t index;
    };
    static void worker_main(aurora_worker *w, void *arg);
    void run(aurora_worker *w, size_t index);
    bool pop(Job &job);
    void run_guarded(const Job &job, WorkerContext &ctx);

    const aurora_host_api *host_;
    aurora_plugin_ctx *self_;
    plugin::RedisUrl redis_url_;
    size_t max_queue_;
    Tick tick_;
    uint32_t tick_ms_;
    std::vector<std::unique_ptr<Slot>> slots_;  // written in start() only

    std::mutex mu_;
    std::deque<Job> queue_;               // guarded by mu_
    std::vector<aurora_worker *> workers_;  // guarded by mu_
    bool stopped_ = false;                // guarded by mu_
};

}  // namespace aurora::auth
