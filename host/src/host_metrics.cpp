// The host's own metrics, registered once (host_metrics.h).
#include "host_metrics.h"

namespace aurora::host {

void HostMetrics::register_in(MetricRegistry &R) {
    connections = R.add(MetricKind::Gauge, "aurora_connections", "Open WebSocket connections", "");
    connections_total = R.add(MetricKind::Counter, "aurora_connections_accepted_total", "WebSocket connections accepted", "");
    frames_in = R.add(MetricKind::Counter, "aurora_frames_in_total", "Text frames received", "");
    frames_out = R.add(MetricKind::Counter, "aurora_frames_out_total", "Frames written to clients", "");
    bytes_in = R.add(MetricKind::Counter, "aurora_bytes_in_total", "Payload bytes received", "");
    bytes_out = R.add(MetricKind::Counter, "aurora_bytes_out_total", "Payload bytes written", "");
    frame_errors = R.add(MetricKind::Counter, "aurora_frame_errors_total", "Malformed frames answered with an error", "");
    queue_commands = R.add(MetricKind::Counter, "aurora_cross_thread_commands_total",
                              "Commands handed to the service thread by other threads", "");
    const char *closes_help = "WebSocket connections closed, by reason";
    closes_slow = R.add(MetricKind::Counter, "aurora_closes_total", closes_help, "reason=\"slow_consumer\"");
    closes_too_large = R.add(MetricKind::Counter, "aurora_closes_total", closes_help, "reason=\"frame_too_large\"");
    closes_shutdown = R.add(MetricKind::Counter, "aurora_closes_total", closes_help, "reason=\"shutdown\"");
    closes_plugin = R.add(MetricKind::Counter, "aurora_closes_total", closes_help, "reason=\"plugin\"");
    closes_client = R.add(MetricKind::Counter, "aurora_closes_total", closes_help, "reason=\"client\"");
    closes_heartbeat = R.add(MetricKind::Counter, "aurora_closes_total", closes_help, "reason=\"heartbeat\"");
    closes_other = R.add(MetricKind::Counter, "aurora_closes_total", closes_help, "reason=\"other\"");
    closes_flood = R.add(MetricKind::Counter, "aurora_closes_total", closes_help, "reason=\"flood\"");
    closes_protocol = R.add(MetricKind::Counter, "aurora_closes_total", closes_help, "reason=\"protocol_error\"");
    frames_refused = R.add(MetricKind::Counter, "aurora_frames_refused_total",
                              "Frames answered rate_limited: over limits.frames or limits.frame_budgets", "");
    pending_refused = R.add(MetricKind::Counter, "aurora_pending_refused_total",
                               "Frames answered busy: limits.max_pending_per_conn messages already in flight", "");
    conns_refused = R.add(MetricKind::Counter, "aurora_connections_refused_total",
                             "Connections answered 503 at accept: limits.max_connections reached", "");
    http_slow_bodies = R.add(MetricKind::Counter, "aurora_http_slow_bodies_total",
                                "HTTP request bodies not complete within limits.http_body_timeout_ms (408)", "");
    auth_rejected = R.add(MetricKind::Counter, "aurora_auth_rejected_total", "WebSocket upgrades refused", "");
    http_requests = R.add(MetricKind::Counter, "aurora_http_requests_total", "HTTP requests received", "");
    messages_unhandled = R.add(MetricKind::Counter, "aurora_messages_unhandled_total",
                                  "Frames no plugin handled", "");
    pending_messages = R.add(MetricKind::Gauge, "aurora_pending_messages", "Messages held PENDING by plugins", "");
    messages_batched = R.add(MetricKind::Counter, "aurora_ndjson_messages_total",
                                "Messages sent inside multi-message frames (subprotocol aurora.ndjson)", "");
    const char *deflate_help = "permessage-deflate payload bytes, before and after compression (out: per delivery)";
    deflate_in = R.add(MetricKind::Counter, "aurora_compression_bytes_total", deflate_help,
                          "direction=\"out\",stage=\"before\"");
    deflate_out = R.add(MetricKind::Counter, "aurora_compression_bytes_total", deflate_help,
                           "direction=\"out\",stage=\"after\"");
    inflate_in = R.add(MetricKind::Counter, "aurora_compression_bytes_total", deflate_help,
                          "direction=\"in\",stage=\"after\"");
    inflate_out = R.add(MetricKind::Counter, "aurora_compression_bytes_total", deflate_help,
                           "direction=\"in\",stage=\"before\"");
    deflate_runs = R.add(MetricKind::Counter, "aurora_compressions_total",
                            "Payloads compressed (a broadcast once, whatever its recipients)", "");
}

}  // namespace aurora::host
