// Metrics: counters, gauges and histograms, rendered at GET /metrics in the
// Prometheus text format (0.0.4).
//
// Thread contract: registration happens on the main thread before the host
// serves (host metrics in the constructor, plugin metrics during init), so
// the registry's containers never change while other threads read them.
// Updates are lock-free atomics from any thread; render() runs on the
// service thread.
#pragma once

#include <aurora/common.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

enum class MetricKind { Counter, Gauge, Histogram };

// The opaque aurora_metric of the ABI.
struct aurora_metric {
    MetricKind kind;
    std::string labels;  // `a="x",b="y"` or empty
    std::atomic<double> value{0};
    // Histograms only:
    std::vector<double> bounds;
    std::unique_ptr<std::atomic<uint64_t>[]> buckets;  // bounds.size() + 1 (the +Inf bucket)
    std::atomic<double> sum{0};
    std::atomic<uint64_t> count{0};

    void add(double d) { value.fetch_add(d, std::memory_order_relaxed); }
    void set(double v) { value.store(v, std::memory_order_relaxed); }
    void observe(double v);
};

namespace aurora::host {

class MetricRegistry {
public:
    // Returns nullptr (after logging) for an invalid name or labels, or when
    // the name exists with another kind.
    aurora_metric *add(MetricKind kind, const std::string &name, const std::string &help, const std::string &labels,
                       const double *bounds = nullptr, size_t n_bounds = 0);
    std::string render() const;

    static bool valid_name(std::string_view name);
    static bool valid_labels(std::string_view labels);

private:
    struct Family {
        MetricKind kind;
        std::string help;
        std::vector<std::unique_ptr<aurora_metric>> series;
    };
    std::map<std::string, Family> families_;
};

// Default histogram buckets, in seconds: 100 µs .. 10 s.
const std::vector<double> &default_latency_buckets();

}  // namespace aurora::host
