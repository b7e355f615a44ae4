// The plugin's metrics, registered once in init (main thread); updated from
// any thread (the host's updates are lock-free). Exported as
// aurora_<instance>_<name>.
#pragma once

#include <aurora/aurora.h>

namespace aurora::ratelimit {

enum class Kind { Message = 0, Control = 1, Connect = 2 };
enum class LimitName { Room = 0, User = 1, Control = 2, Connect = 3 };

struct Metrics {
    const aurora_host_api *host = nullptr;
    aurora_metric *checks[3] = {};   // checks_total{kind}
    aurora_metric *allowed[3] = {};  // allowed_total{kind}
    aurora_metric *limited[4] = {};  // limited_total{limit}
    aurora_metric *redis_errors = nullptr;
    aurora_metric *error_allowed = nullptr;  // redis_error_verdicts_total{verdict="allow"}
    aurora_metric *error_denied = nullptr;
    aurora_metric *abuse_closes = nullptr;
    aurora_metric *connect_closes = nullptr;
    aurora_metric *latency = nullptr;  // check_latency_seconds: enqueue to verdict
    aurora_metric *batch = nullptr;    // batch_checks: checks per round trip

    // False if the host refused a name (a bug: logged by the caller).
    bool register_all(const aurora_host_api *h, aurora_plugin_ctx *self);

    void add(aurora_metric *m, double n = 1) const { host->metric_add(m, n); }
    void check(Kind k) const { add(checks[static_cast<int>(k)]); }
    void allow(Kind k) const { add(allowed[static_cast<int>(k)]); }
    void limit(LimitName l) const { add(limited[static_cast<int>(l)]); }
};

}  // namespace aurora::ratelimit
