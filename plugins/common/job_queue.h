// A queue of jobs from any thread to a plugin's own worker threads
// (host->spawn): the lock, the bound, the wake-ups and the stop, written once.
//
//     JobQueue<Job> jobs_{host, 1024};
//     // any thread (a hook, an HTTP handler):
//     if (!jobs_.post(std::move(job))) answer_unavailable();
//     // the worker (host->spawn's function):
//     JobQueue<Job>::Attach at(jobs_, w);  // post() wakes w from now on
//     while (!host->worker_should_stop(w)) {
//         if (auto job = jobs_.pop()) run(*job);
//         else host->worker_wait(w, 1000);  // post() ends the wait early
//     }
//     for (Job &job : jobs_.close()) answer_unavailable(job);  // nothing is lost
//
// THREADS: post, pop, take, close from any thread (one mutex). Every
// attached worker is woken by each post: an idle one takes the job, a busy
// one finds the queue empty later (worker_wake never loses a wake-up). A
// worker handle stays valid until its plugin's shutdown returns (host_api.h,
// HANDLES), so waking one that has just detached is harmless.
//
// Once closed, post refuses (false): the caller answers "unavailable" on
// its own thread, and every job is answered exactly once. A queue that is
// never closed keeps accepting, for owners that drain it at shutdown.
#pragma once

#include <aurora/host_api.h>

#include <algorithm>
#include <cstddef>
#include <deque>
#include <limits>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

namespace aurora::plugin {

template <typename Job>
class JobQueue {
public:
    explicit JobQueue(const aurora_host_api *host, size_t max_queued = std::numeric_limits<size_t>::max())
        : host_(host), max_(max_queued) {}
    JobQueue(const JobQueue &) = delete;
    JobQueue &operator=(const JobQueue &) = delete;

    // Any thread. False when `max_queued` jobs wait already or the queue is
    // closed: the job was not queued.
    bool post(Job job) {
        // Woken after the lock is released, so that a worker that wakes at
        // once does not block on it; the first kWakeOutside workers only
        // (every pool here has fewer), the rest under the lock.
        aurora_worker *wake[kWakeOutside];
        size_t n = 0;
        {
            std::lock_guard lock(mu_);
            if (closed_ || jobs_.size() >= max_) return false;
            jobs_.push_back(std::move(job));
            for (aurora_worker *w : workers_) {
                if (n < kWakeOutside) wake[n++] = w;
                else host_->worker_wake(w);
            }
        }
        for (size_t i = 0; i < n; ++i) host_->worker_wake(wake[i]);
        return true;
    }

    // Worker thread: wakes this worker on post() while it lives.
    class Attach {
    public:
        Attach(JobQueue &q, aurora_worker *w) : q_(q), w_(w) {
            std::lock_guard lock(q_.mu_);
            q_.workers_.push_back(w_);
        }
        ~Attach() {
            std::lock_guard lock(q_.mu_);
            std::erase(q_.workers_, w_);
        }
        Attach(const Attach &) = delete;
        Attach &operator=(const Attach &) = delete;

    private:
        JobQueue &q_;
        aurora_worker *w_;
    };

    // The oldest job, if any.
    std::optional<Job> pop() {
        std::lock_guard lock(mu_);
        if (jobs_.empty()) return std::nullopt;
        std::optional<Job> job(std::move(jobs_.front()));
        jobs_.pop_front();
        return job;
    }

    // Appends up to `max` of the oldest jobs to `out`; returns how many.
    size_t take(std::vector<Job> &out, size_t max = std::numeric_limits<size_t>::max()) {
        std::lock_guard lock(mu_);
        size_t n = std::min(max, jobs_.size());
        auto end = jobs_.begin() + static_cast<std::ptrdiff_t>(n);
        out.insert(out.end(), std::make_move_iterator(jobs_.begin()), std::make_move_iterator(end));
        jobs_.erase(jobs_.begin(), end);
        return n;
    }

    bool empty() const {
        std::lock_guard lock(mu_);
        return jobs_.empty();
    }

    // From now on post() refuses. Returns what was still queued, for the
    // caller to answer.
    std::vector<Job> close() {
        std::vector<Job> left;
        std::lock_guard lock(mu_);
        closed_ = true;
        left.assign(std::make_move_iterator(jobs_.begin()), std::make_move_iterator(jobs_.end()));
        jobs_.clear();
        return left;
    }

private:
    static constexpr size_t kWakeOutside = 8;
    const aurora_host_api *host_;
    const size_t max_;
    mutable std::mutex mu_;
    std::deque<Job> jobs_;                  // guarded by mu_
    std::vector<aurora_worker *> workers_;  // guarded by mu_
    bool closed_ = false;                   // guarded by mu_
};

}  // namespace aurora::plugin
