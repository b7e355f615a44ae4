// What every part of the chat plugin shares: the host, the settings, the
// metrics. Written at init on the main thread, read-only afterwards.
#pragma once

#include <aurora/aurora.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cluster_slots.h"
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
    int64_t message_state_ttl_s = 2592000;  // changes to messages (kChangeScript)
    int64_t max_reaction_emojis = 20, max_reactions = 1000, max_changes = 1000;
    bool room_moderators = false;
    bool read_receipts = true;  // receipts events and snapshots (kReceiptsScript)
    int64_t receipts_interval_ms = 1000, receipts_snapshot_max = 200;
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
    bool server_api = false;  // server_api.h
    std::string server_api_path;       // "/api/server/"
    std::string server_api_keys_file;  // or AURORA_SERVER_API_KEYS
    std::string server_api_user_id, server_api_username;  // the sender of a publish without user_id
    std::string events_stream;  // event_sink.h; "" off
    int64_t events_stream_maxlen = 100000;
    std::string webhook_url, webhook_secret;  // "" off; the secret or AURORA_WEBHOOK_SECRET
    int64_t webhook_queue_max = 10000, webhook_batch_max = 100, webhook_max_attempts = 6;
    int64_t webhook_timeout_ms = 5000, webhook_backoff_ms = 500;
};

struct ChatMetrics {
    aurora_metric *sent, *changes, *duplicates, *send_errors, *unreplicated, *fanout, *resumes, *resumed_messages, *redis_up;
    aurora_metric *reads_busy, *presence_events, *presence_coalesced, *receipt_events;
    aurora_metric *send_seconds;
};

// Where a room's data lives. Single and sentinel modes: the seed's names
// (one stream, "chat.<room>", "chat:presence:<room>"). Cluster mode
// (docs/scaling.md): the room's shard s = CRC16(room) mod stream_shards,
// and every key and channel of the room carries the hash tag {s}, so the
// send script's stream, ref key and shard channel share one slot:
//   chat:messages:{s}   chat.{s}.<room>   chat:presence:{s}:<room>   chat:ref:{s}:<user>:<ref>
struct ChatContext : plugin::PluginHandle {  // host, self, log()
    ChatSettings s;
    plugin::RedisUrl redis_url;
    std::string replica;  // unique per process: presence entries name it
    ChatMetrics m{};
    int shards = 0;                     // cluster mode: redis.stream_shards; 0 otherwise
    std::vector<std::string> tags;      // "{0}", "{1}", ... (cluster mode)
    std::vector<uint16_t> shard_slots;  // the slot of each tag

    bool cluster() const { return shards > 0; }
    void set_shards(int n) {
        shards = n;
        for (int i = 0; i < n; ++i) {
            tags.push_back("{" + std::to_string(i) + "}");
            shard_slots.push_back(plugin::key_slot(tags.back()));
        }
    }
    size_t shard(std::string_view room) const { return plugin::crc16(room) % static_cast<unsigned>(shards); }
    // The slot of the room's keys and channel (0 outside cluster mode: unused).
    uint16_t slot(std::string_view room) const { return cluster() ? shard_slots[shard(room)] : 0; }
    std::string stream(std::string_view room) const {
        return cluster() ? s.stream + ":" + tags[shard(room)] : s.stream;
    }
    std::string shard_stream(size_t i) const { return s.stream + ":" + tags[i]; }
    std::string channel(std::string_view room) const {
        return cluster() ? s.channel_prefix + tags[shard(room)] + "." + std::string(room) : s.channel_prefix + std::string(room);
    }
    // The room a channel is for ("" if it is none of ours).
    std::string_view room_of(std::string_view channel) const {
        if (!channel.starts_with(s.channel_prefix)) return {};
        channel.remove_prefix(s.channel_prefix.size());
        if (!cluster()) return channel;
        size_t dot = channel.find("}.");
        return dot == std::string_view::npos ? std::string_view() : channel.substr(dot + 2);
    }
    std::string presence_key(std::string_view room) const {
        return cluster() ? "chat:presence:" + tags[shard(room)] + ":" + std::string(room)
                         : "chat:presence:" + std::string(room);
    }
    // A change's ref (kChangeScript) is remembered apart from messages': chat:ref:[{s}:]<user>:c:<ref>.
    std::string change_ref_key(std::string_view room, std::string_view user, std::string_view ref) const {
        return ref_key(room, user, "c:" + std::string(ref));
    }
    std::string ref_key(std::string_view room, std::string_view user, std::string_view ref) const {
        std::string k = cluster() ? "chat:ref:" + tags[shard(room)] + ":" : "chat:ref:";
        return k.append(user).append(":").append(ref);
    }
    // A room's read positions (kReceiptsScript): chat:reads:[{s}:]<room>, chat:readids:[{s}:]<room>.
    std::string reads_key(std::string_view room, bool ids) const {
        std::string k = ids ? "chat:readids:" : "chat:reads:";
        if (cluster()) k += tags[shard(room)] + ":";
        return k.append(room);
    }
    // A message's change state (kChangeScript): chat:msg:[{s}:]<room>:<id>.
    std::string message_state_key(std::string_view room, std::string_view id) const {
        std::string k = cluster() ? "chat:msg:" + tags[shard(room)] + ":" : "chat:msg:";
        return k.append(room).append(":").append(id);
    }
    const char *publish() const { return cluster() ? "SPUBLISH" : "PUBLISH"; }
};

}  // namespace aurora::chat
