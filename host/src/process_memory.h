// The process's memory: the gauges /metrics shows, and handing freed heap
// back to the kernel after a burst.
//
// THREADS: [main] register_metrics; [service] refresh (at each scrape) and
// trim_if_grown (from the heartbeat timer, every 5 s).
#pragma once

#include <cstddef>

#include "metrics.h"

namespace aurora::host {

class ProcessMemory {
public:
    void register_metrics(MetricRegistry &registry);
    void refresh();
    // After a burst (thousands of handshakes, snapshots waiting in output
    // buffers) glibc keeps the freed memory, scattered between live blocks,
    // and RSS stays at the high-water mark. malloc_trim gives whole free
    // pages in the middle of the heap back to the kernel (madvise). It walks
    // the free chunks, so it runs only when the free total grew by 8 MB
    // since the last time.
    void trim_if_grown();

private:
    aurora_metric *rss_ = nullptr, *heap_in_use_ = nullptr, *heap_free_ = nullptr, *heap_trims_ = nullptr;
    size_t trimmed_at_free_ = 0;  // malloc's free total after the last trim
};

}  // namespace aurora::host
