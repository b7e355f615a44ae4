// Memory gauges and heap trimming (glibc).
#include "process_memory.h"

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "log.h"

namespace aurora::host {

void ProcessMemory::register_metrics(MetricRegistry &R) {
    rss_ = R.add(MetricKind::Gauge, "process_resident_memory_bytes", "Resident memory of this process", "");
    heap_in_use_ = R.add(MetricKind::Gauge, "aurora_heap_in_use_bytes",
                         "malloc'd bytes in use (glibc mallinfo2: uordblks + hblkhd), at scrape time", "");
    heap_free_ = R.add(MetricKind::Gauge, "aurora_heap_free_bytes",
                       "Bytes malloc holds free (fordblks): RSS above in-use that is fragmentation or high-water", "");
    heap_trims_ = R.add(MetricKind::Counter, "aurora_heap_trims_total",
                        "malloc_trim calls after the free heap grew (pages handed back to the kernel)", "");
}

void ProcessMemory::refresh() {
    struct mallinfo2 mi = mallinfo2();
    heap_in_use_->set(static_cast<double>(mi.uordblks + mi.hblkhd));
    heap_free_->set(static_cast<double>(mi.fordblks));
    long pages = 0, resident = 0;
    if (FILE *f = std::fopen("/proc/self/statm", "r")) {
        if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        std::fclose(f);
    }
    rss_->set(static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)));
}

void ProcessMemory::trim_if_grown() {
    constexpr size_t kTrimStepBytes = 8u << 20;
    struct mallinfo2 mi = mallinfo2();
    if (mi.fordblks < trimmed_at_free_ + kTrimStepBytes) {
        trimmed_at_free_ = std::min(trimmed_at_free_, mi.fordblks);
        return;
    }
    auto t0 = std::chrono::steady_clock::now();
    malloc_trim(0);
    std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - t0;
    trimmed_at_free_ = mi.fordblks;
    heap_trims_->add(1);
    AURORA_HLOG(AURORA_LOG_INFO, 0, "heap trim: %zu MB free (%zu MB in use) handed back in %.1f ms", mi.fordblks >> 20,
                (mi.uordblks + mi.hblkhd) >> 20, took.count());
}

}  // namespace aurora::host
