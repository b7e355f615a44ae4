// The sliding-window log in memory, for budgets that live in one process:
// the control messages of one connection and the refusals it collects. Same
// rule as the Redis script: at most `max` events in any `window_ms`.
// Not thread-safe: its owner (ConnTable) holds the lock.
#pragma once

#include <cstdint>
#include <deque>

#include "ratelimit_settings.h"

namespace aurora::ratelimit {

class LocalWindow {
public:
    // Records the event at `now_ms` if the limit allows it. Returns 0 when
    // allowed, else the milliseconds until it would be (nothing recorded).
    int64_t hit(const Limit &limit, int64_t now_ms) {
        if (!limit.on()) return 0;
        while (static_cast<int64_t>(times_.size()) > limit.max) times_.pop_back();
        if (static_cast<int64_t>(times_.size()) == limit.max) {
            int64_t wait = times_.back() + limit.window_ms - now_ms;
            if (wait > 0) return wait;
            times_.pop_back();
        }
        times_.push_front(now_ms);
        return 0;
    }

private:
    std::deque<int64_t> times_;  // newest first, at most limit.max entries
};

}  // namespace aurora::ratelimit
