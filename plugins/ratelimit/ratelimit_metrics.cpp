#include "ratelimit_metrics.h"

namespace aurora::ratelimit {

bool Metrics::register_all(const aurora_host_api *h, aurora_plugin_ctx *self) {
    host = h;
    static const char *const kinds[] = {"kind=\"message\"", "kind=\"control\"", "kind=\"connect\""};
    static const char *const limits[] = {"limit=\"room\"", "limit=\"user\"", "limit=\"control\"", "limit=\"connect\""};
    bool ok = true;
    for (int i = 0; i < 3; ++i) {
        ok &= (checks[i] = h->metric_counter(self, "checks_total", "Rate-limit checks by kind", kinds[i])) != nullptr;
        ok &= (allowed[i] = h->metric_counter(self, "allowed_total", "Checks that allowed", kinds[i])) != nullptr;
    }
    for (int i = 0; i < 4; ++i)
        ok &= (limited[i] = h->metric_counter(self, "limited_total", "Refusals by the limit that refused",
                                              limits[i])) != nullptr;
    ok &= (redis_errors = h->metric_counter(self, "redis_errors_total",
                                            "Checks Redis could not answer in time (failed, timed out)", nullptr)) !=
          nullptr;
    ok &= (error_allowed = h->metric_counter(self, "redis_error_verdicts_total",
                                             "What on_redis_error decided for those checks", "verdict=\"allow\"")) !=
          nullptr;
    ok &= (error_denied = h->metric_counter(self, "redis_error_verdicts_total",
                                            "What on_redis_error decided for those checks", "verdict=\"deny\"")) !=
          nullptr;
    ok &= (abuse_closes = h->metric_counter(self, "abuse_closes_total",
                                            "Connections closed with 1008 for repeated refusals", nullptr)) != nullptr;
    ok &= (connect_closes = h->metric_counter(self, "connect_closes_total",
                                              "Connections closed with 1008 over the per-address budget", nullptr)) !=
          nullptr;
    ok &= (latency = h->metric_histogram(self, "check_latency_seconds",
                                         "From on_message/on_connect to the verdict of a Redis check", nullptr,
                                         nullptr, 0)) != nullptr;
    static const double sizes[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096};
    ok &= (batch = h->metric_histogram(self, "batch_checks", "Checks pipelined in one Redis round trip", nullptr, sizes,
                                       sizeof sizes / sizeof sizes[0])) != nullptr;
    return ok;
}

}  // namespace aurora::ratelimit
