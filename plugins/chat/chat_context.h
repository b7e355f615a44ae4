// What every part of the chat plugin shares: the host, the settings, the
// metrics. Written at init on the main thread, read-only afterwards.
#pragma once

#include <aurora/aurora.h>

#include <cstdint>
#include <string>

#include "plugin_handle.h"
#include "redis_connection.h"

namespace aurora::chat {

struct ChatSettings {
    std::string default_room;
    bool auto_join = true;
    size_t max_rooms = 32;
    size_t max_text_chars = 4000;
    std::string stream;          // "chat:messages"
    std::string channel_prefix;  // "chat."
    int64_t stream_maxlen = 0;   // 0: no trimming
    int64_t dedup_window_s = 300;
    size_t resume_max = 1000;
    size_t resume_scan_max = 20000;
    size_t resume_max_bytes = 1 << 20;
    size_t read_queue_max = 1024;
    int64_t presence_ttl_s = 30;
    int64_t presence_refresh_s = 10;
    int64_t typing_interval_ms = 1000;
    bool presence_events = true;
    int64_t presence_snapshot_max = 200;
    int64_t presence_coalesce_ms = 500;
    int64_t redis_timeout_ms = 1000;
    int64_t wait_replicas = 0;
    int64_t wait_timeout_ms = 500;
};

struct ChatMetrics {
    aurora_metric *sent, *duplicates, *send_errors, *unreplicated, *fanout, *resumes, *resumed_messages, *redis_up;
    aurora_metric *reads_busy, *presence_events, *presence_coalesced;
    aurora_metric *send_seconds;
};

struct ChatContext : plugin::PluginHandle {  // host, self, log()
    ChatSettings s;
    plugin::RedisUrl redis_url;
    std::string replica;  // unique per process: presence entries name it
    ChatMetrics m{};

    std::string channel(const std::string &room) const { return s.channel_prefix + room; }
    std::string presence_key(const std::string &room) const { return "chat:presence:" + room; }
};

}  // namespace aurora::chat
