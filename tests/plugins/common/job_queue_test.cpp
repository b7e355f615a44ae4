// JobQueue (plugins/common/job_queue.h): bound, order, close, wake-ups, and
// many producers with one consumer. The host's worker_wake is the only API
// function it calls; here it counts and signals like the host's does.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include "job_queue.h"

namespace aurora::plugin {
namespace {

std::mutex g_mu;
std::condition_variable g_cv;
std::map<aurora_worker *, int> g_wakes;  // guarded by g_mu

void count_wake(aurora_worker *w) {
    {
        std::lock_guard lock(g_mu);
        ++g_wakes[w];
    }
    g_cv.notify_all();
}

aurora_host_api fake_host() {
    aurora_host_api api;
    std::memset(&api, 0, sizeof api);
    api.struct_size = sizeof api;
    api.worker_wake = count_wake;
    return api;
}

aurora_worker *worker(int n) { return reinterpret_cast<aurora_worker *>(static_cast<uintptr_t>(0x1000 + n)); }

int wakes(aurora_worker *w) {
    std::lock_guard lock(g_mu);
    return g_wakes[w];
}

TEST(JobQueue, BoundedFifoThatRefusesWhenFull) {
    aurora_host_api api = fake_host();
    JobQueue<int> q(&api, 2);
    EXPECT_TRUE(q.post(1));
    EXPECT_TRUE(q.post(2));
    EXPECT_FALSE(q.post(3));  // full: not queued
    EXPECT_EQ(q.pop(), 1);
    EXPECT_TRUE(q.post(4));
    std::vector<int> got;
    EXPECT_EQ(q.take(got), 2u);
    EXPECT_EQ(got, (std::vector<int>{2, 4}));
    EXPECT_FALSE(q.pop().has_value());
    EXPECT_TRUE(q.empty());
}

TEST(JobQueue, TakeAtMostMax) {
    aurora_host_api api = fake_host();
    JobQueue<int> q(&api);
    for (int i = 0; i < 5; ++i) q.post(i);
    std::vector<int> got{-1};
    EXPECT_EQ(q.take(got, 3), 3u);
    EXPECT_EQ(got, (std::vector<int>{-1, 0, 1, 2}));  // appended
}

TEST(JobQueue, CloseHandsBackWhatIsLeftAndRefusesAfter) {
    aurora_host_api api = fake_host();
    JobQueue<std::string> q(&api);
    q.post("a");
    q.post("b");
    std::vector<std::string> left = q.close();
    EXPECT_EQ(left, (std::vector<std::string>{"a", "b"}));
    EXPECT_FALSE(q.post("c"));
    EXPECT_TRUE(q.empty());
}

TEST(JobQueue, WakesAttachedWorkersOnlyWhileAttached) {
    aurora_host_api api = fake_host();
    JobQueue<int> q(&api);
    aurora_worker *a = worker(1), *b = worker(2);
    int a0 = wakes(a), b0 = wakes(b);
    {
        JobQueue<int>::Attach on_a(q, a);
        {
            JobQueue<int>::Attach on_b(q, b);
            q.post(1);
        }
        q.post(2);
    }
    q.post(3);
    EXPECT_EQ(wakes(a) - a0, 2);
    EXPECT_EQ(wakes(b) - b0, 1);
}

TEST(JobQueue, ManyProducersOneConsumerEveryJobOnce) {
    aurora_host_api api = fake_host();
    JobQueue<int> q(&api);
    constexpr int kProducers = 4, kEach = 5000;
    aurora_worker *w = worker(3);
    std::atomic<long> sum{0};
    std::atomic<int> count{0};
    std::thread consumer([&] {
        JobQueue<int>::Attach attach(q, w);
        while (count.load() < kProducers * kEach) {
            if (std::optional<int> j = q.pop()) {
                sum += *j;
                ++count;
                continue;
            }
            std::unique_lock lock(g_mu);  // as worker_wait: bounded, woken by post
            g_cv.wait_for(lock, std::chrono::milliseconds(50));
        }
    });
    std::vector<std::thread> producers;
    for (int p = 0; p < kProducers; ++p)
        producers.emplace_back([&, p] {
            for (int i = 0; i < kEach; ++i) ASSERT_TRUE(q.post(p * kEach + i));
        });
    for (auto &t : producers) t.join();
    consumer.join();
    const long n = kProducers * kEach;
    EXPECT_EQ(count.load(), n);
    EXPECT_EQ(sum.load(), n * (n - 1) / 2);
    EXPECT_TRUE(q.empty());
}

}  // namespace
}  // namespace aurora::plugin
