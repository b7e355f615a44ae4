// The host's own metrics (per plugin ones are registered by the plugins,
// memory gauges by ProcessMemory). Registered on the main thread before
// the host serves; updated from any thread (atomics).
#pragma once

#include "metrics.h"

namespace aurora::host {

struct HostMetrics {
    aurora_metric *connections, *connections_total, *frames_in, *frames_out, *bytes_in, *bytes_out;
    aurora_metric *frame_errors, *queue_commands;
    aurora_metric *closes_slow, *closes_too_large, *closes_shutdown, *closes_plugin, *closes_client,
        *closes_heartbeat, *closes_other, *closes_flood, *closes_protocol;
    aurora_metric *frames_refused, *pending_refused, *conns_refused, *http_slow_bodies;
    aurora_metric *auth_rejected, *http_requests, *messages_unhandled, *pending_messages, *messages_batched;
    aurora_metric *deflate_in, *deflate_out, *deflate_runs, *inflate_in, *inflate_out;

    void register_in(MetricRegistry &registry);
};

}  // namespace aurora::host
