// The chat plugin: rooms, the seed's message path made atomic (one Lua
// script: XADD + PUBLISH), fan-out across replicas (Redis Pub/Sub), resume
// after reconnect, presence, typing, read markers. docs/protocol.md has the
// wire protocol; plugins/chat/README.md the settings.
//
// Threads: hooks on the service thread (validation, per-connection state in
// `conns`), and there too, on the host's loop (ABI 1.2), never waiting: the
// send pipeline (send_pipeline.cpp: writes) and the fan-out subscriber
// (fanout_subscriber.cpp: live delivery, join sequencing), each with its own
// asynchronous Redis connection. Reads whose size a client chooses (resume
// ranges, presence snapshots) are the read worker's (read_worker.cpp), on
// its own thread with its own connection, off the live path.
#include <aurora/aurora.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <set>
#include <unordered_map>

#include "chat_context.h"
#include "chat_protocol.h"
#include "event_sink.h"
#include "fanout_subscriber.h"
#include "shard_fanout.h"
#include "json.h"
#include "plugin_handle.h"
#include "read_worker.h"
#include "send_pipeline.h"
#include "server_api.h"
#include "settings.h"
#include "stream_id.h"

namespace aurora::chat {
namespace {

using plugin::Setting;
using plugin::StreamId;

const plugin::Field<ChatSettings> kFields[] = {
    {{"default_room", Setting::String, "\"general\"", "room every connection joins at connect (the seed's)"},
     &ChatSettings::default_room},
    {{"auto_join", Setting::Bool, "true", "join `default_room` at connect"}, &ChatSettings::auto_join},
    {{"max_rooms", Setting::Int, "32", "rooms one connection may be in", 1, 1024}, &ChatSettings::max_rooms},
    {{"max_text_chars", Setting::Int, "4000", "longest message text, in Unicode code points", 1, 1000000},
     &ChatSettings::max_text_chars},
    {{"stream", Setting::String, "\"chat:messages\"", "the Redis stream messages are added to"},
     &ChatSettings::stream},
    {{"channel_prefix", Setting::String, "\"chat.\"", "Pub/Sub channel of a room: prefix + room"},
     &ChatSettings::channel_prefix},
    {{"stream_maxlen", Setting::Int, "1000000", "approximate stream length kept (XADD MAXLEN ~); 0 keeps all", 0, 1e12},
     &ChatSettings::stream_maxlen},
    {{"dedup_window_s", Setting::Int, "300", "a `ref` seen again within this window is not sent twice", 1, 86400},
     &ChatSettings::dedup_window_s},
    {{"message_state_ttl_s", Setting::Int, "2592000",
     "how long after it was sent a message may be changed (edit, delete, react: `too_old` after), and its change "
     "state (deleted, who reacted) kept in Redis after its last change", 60, 1e9},
     &ChatSettings::message_state_ttl_s},
    {{"max_reaction_emojis", Setting::Int, "20", "different emojis one message may carry", 1, 1000},
     &ChatSettings::max_reaction_emojis},
    {{"max_reactions", Setting::Int, "1000", "reactions (emoji, user) one message may carry", 1, 1000000},
     &ChatSettings::max_reactions},
    {{"max_changes", Setting::Int, "1000",
     "changes (edits, deletes, reactions added or taken back) one message may have: each is kept and folded by ingest",
     1, 100000},
     &ChatSettings::max_changes},
    {{"room_moderators", Setting::Bool, "false",
     "let a delete frame's `moderator` (set by the rooms plugin ahead of chat from the sender's role: owner and "
     "admins) delete others' messages; only with rooms in the pipeline, which overwrites the field"},
     &ChatSettings::room_moderators},
    {{"read_receipts", Setting::Bool, "true",
     "publish read positions to the room (`receipts` events, at most one per room and receipts_interval_ms per "
     "replica) and answer `receipts` snapshots"},
     &ChatSettings::read_receipts},
    {{"receipts_interval_ms", Setting::Int, "1000", "a room's read positions are published at most this often", 50,
     60000},
     &ChatSettings::receipts_interval_ms},
    {{"receipts_snapshot_max", Setting::Int, "200", "a `receipts` snapshot lists at most this many readers, newest first",
     1, 5000},
     &ChatSettings::receipts_snapshot_max},
    {{"resume_max", Setting::Int, "1000", "most messages one resume sends", 1, 100000}, &ChatSettings::resume_max},
    {{"resume_scan_max", Setting::Int, "20000",
     "most stream entries one resume reads (on the read worker's thread: other clients' resumes wait meanwhile, "
     "live delivery does not)",
     1, 10000000},
     &ChatSettings::resume_scan_max},
    {{"resume_max_bytes", Setting::Int, "1048576",
     "most bytes of messages one resume sends (keep it under the host's send_queue_max_bytes)", 1024, 1e9},
     &ChatSettings::resume_max_bytes},
    {{"read_queue_max", Setting::Int, "1024",
     "most resume and presence requests waiting for the read worker, all connections together (one per "
     "connection, room and kind); more are answered `busy`",
     1, 1000000},
     &ChatSettings::read_queue_max},
    {{"presence_ttl_s", Setting::Int, "30", "a replica's presence entries vanish this long after it stops refreshing", 2, 3600},
     &ChatSettings::presence_ttl_s},
    {{"presence_refresh_s", Setting::Int, "10", "how often presence entries are refreshed", 1, 3600},
     &ChatSettings::presence_refresh_s},
    {{"presence_events", Setting::Bool, "true",
     "broadcast join/leave events to the room (each costs one delivery per member: turn off for very large rooms)"},
     &ChatSettings::presence_events},
    {{"presence_snapshot_max", Setting::Int, "200",
     "a presence snapshot lists at most this many connections (plus the total)", 1, 100000},
     &ChatSettings::presence_snapshot_max},
    {{"presence_coalesce_ms", Setting::Int, "500",
     "join/leave events of a room are held this long, then only each connection's net change is sent (a leave and "
     "a join within it cancel out); 0 sends each at once",
     0, 60000},
     &ChatSettings::presence_coalesce_ms},
    {{"typing_interval_ms", Setting::Int, "1000", "typing events relayed at most this often per connection and room", 0, 60000},
     &ChatSettings::typing_interval_ms},
    {{"redis_timeout_ms", Setting::Int, "1000", "connect and command timeout for Redis", 10, 60000},
     &ChatSettings::redis_timeout_ms},
    {{"wait_replicas", Setting::Int, "0",
     "a message is acknowledged only once this many Redis replicas have it (WAIT after each batch): a failover "
     "then loses no acknowledged message; 0 acknowledges what the master stored (docs/scaling.md)",
     0, 64},
     &ChatSettings::wait_replicas},
    {{"wait_timeout_ms", Setting::Int, "500",
     "how long WAIT waits for wait_replicas; a message not confirmed in time is answered `unavailable` (at least "
     "250 ms shorter than redis_timeout_ms)",
     1, 60000},
     &ChatSettings::wait_timeout_ms},
    {{"server_api", Setting::Bool, "false",
     "serve the server API (docs/server-api.md) with the keys of server_api_keys_file or AURORA_SERVER_API_KEYS"},
     &ChatSettings::server_api},
    {{"server_api_path", Setting::String, "\"/api/server/\"", "where the server API's routes start (ends with /)"},
     &ChatSettings::server_api_path},
    {{"server_api_keys_file", Setting::String, "\"\"",
     "a JSON file {\"keys\": [{\"name\", \"key\", \"scopes\", \"rate_per_s\"}]} (or the same text in "
     "AURORA_SERVER_API_KEYS)"},
     &ChatSettings::server_api_keys_file},
    {{"server_api_user_id", Setting::String, "\"000000000000000000000000\"",
     "the userId of messages the server API publishes without a user_id (an ObjectId: ingest stores it)"},
     &ChatSettings::server_api_user_id},
    {{"server_api_username", Setting::String, "\"system\"", "their username"}, &ChatSettings::server_api_username},
    {{"events_stream", Setting::String, "\"\"",
     "a Redis stream that gets an entry per connect, disconnect, join, leave and stored message (\"\": none)"},
     &ChatSettings::events_stream},
    {{"events_stream_maxlen", Setting::Int, "100000", "approximate length events_stream is trimmed to", 100, 1e9},
     &ChatSettings::events_stream_maxlen},
    {{"webhook_url", Setting::String, "\"\"", "POST the same events there, in signed batches (\"\": none)"},
     &ChatSettings::webhook_url},
    {{"webhook_secret", Setting::String, "\"\"",
     "the HMAC-SHA256 key of the batches' signature, at least 32 bytes (or AURORA_WEBHOOK_SECRET)"},
     &ChatSettings::webhook_secret},
    {{"webhook_queue_max", Setting::Int, "10000", "events waiting for the webhook at most; more are dropped and counted",
      1, 10000000},
     &ChatSettings::webhook_queue_max},
    {{"webhook_batch_max", Setting::Int, "100", "events per POST at most", 1, 10000}, &ChatSettings::webhook_batch_max},
    {{"webhook_max_attempts", Setting::Int, "6", "a batch is dead-lettered after this many failed POSTs", 1, 100},
     &ChatSettings::webhook_max_attempts},
    {{"webhook_timeout_ms", Setting::Int, "5000", "connect and answer timeout of one POST", 100, 120000},
     &ChatSettings::webhook_timeout_ms},
    {{"webhook_backoff_ms", Setting::Int, "500", "wait before the first retry; doubles up to 30 s", 10, 30000},
     &ChatSettings::webhook_backoff_ms},
};

// [service thread] What the plugin knows of a connection.
struct ChatConn {
    std::string user_id, username;
    std::string current_room;
    std::set<std::string> rooms;  // joined, or joining through the subscriber
    std::set<std::string> live;   // joined: the join took effect (its event was emitted)
    std::unordered_map<std::string, uint64_t> last_typing_ms;
    bool banned = false;  // refused at connect (server API): closing, no events
};

struct ChatPlugin {
    ChatContext ctx;
    std::unique_ptr<ReadWorker> reader;  // before the two that hold a reference to it
    std::unique_ptr<SendPipeline> sender;
    std::unique_ptr<Fanout> subscriber;
    std::unique_ptr<ServerApi> api;  // with server_api only
    std::unique_ptr<EventSink> events;  // with events_stream or webhook_url only
    std::unordered_map<aurora_conn_id, ChatConn> conns;  // [service thread]

    void reply(aurora_conn_id conn, const std::string &json) const { ctx.host->send(ctx.self, conn, plugin::str(json)); }
    // The host's error frame (ABI 1.1 send_error), with the request's ref.
    void reply_error(aurora_conn_id conn, const char *code, const char *message, const std::string &ref_json) const {
        ctx.host->send_error(ctx.self, conn, code, message, plugin::str(ref_json));
    }
    void on_join_effective(const RoomRequest &r, StreamId p0, bool announce);

    // A client request: parsed once (type, ref, room), then one handler per
    // type (kRequests below).
    struct Request {
        aurora_conn_id id;
        ChatConn &c;
        aurora_msg *msg;
        const cJSON *frame;
        std::string type, ref_json, ref_value;
        std::string room;     // "room" if given, else the connection's current room
        bool explicit_room;  // "room" was given
    };
    aurora_verdict handle(aurora_conn_id id, ChatConn &c, aurora_msg *msg);
    aurora_verdict join(Request &r);  // join and resume
    aurora_verdict leave(Request &r);
    // Out of `room` (asked, or taken out by another plugin: on_leave): no
    // sends to it, no presence there, the sequencer forgets it.
    void forget_room(aurora_conn_id id, ChatConn &c, const std::string &room);
    aurora_verdict send_message(Request &r);
    aurora_verdict change_message(Request &r);  // edit, delete, react
    aurora_verdict typing(Request &r);
    aurora_verdict mark_read(Request &r);
    aurora_verdict presence(Request &r);
    aurora_verdict receipts(Request &r);
    aurora_verdict answer(const Request &r, const std::string &json) const {
        ctx.host->msg_set_reply(r.msg, plugin::str(json));
        return AURORA_REPLY;
    }
    aurora_verdict error(const Request &r, const char *code, const std::string &text) const {
        ctx.host->msg_reply_error(r.msg, code, text.c_str());
        return AURORA_REPLY;
    }
    SendJob job_for(const Request &r, SendJob::Kind kind) const {
        SendJob job{kind};
        job.conn = r.id;
        job.room = r.room;
        job.user_id = r.c.user_id;
        job.username = r.c.username;
        job.ref_json = r.ref_json;
        job.ref_value = r.ref_value;
        return job;
    }
};

// The requests chat answers; `member`: only in a room the connection is in.
struct RequestRoute {
    std::string_view type;
    bool member;
    aurora_verdict (ChatPlugin::*handler)(ChatPlugin::Request &);
};
constexpr RequestRoute kRequests[] = {
    {"join", false, &ChatPlugin::join},       {"resume", false, &ChatPlugin::join},
    {"leave", true, &ChatPlugin::leave},      {"message", true, &ChatPlugin::send_message},
    {"typing", true, &ChatPlugin::typing},    {"read", true, &ChatPlugin::mark_read},
    {"presence", true, &ChatPlugin::presence}, {"edit", true, &ChatPlugin::change_message},
    {"delete", true, &ChatPlugin::change_message}, {"react", true, &ChatPlugin::change_message},
    {"receipts", true, &ChatPlugin::receipts},
};

std::string random_replica_id() {
    std::random_device rd;
    char buf[32];
    std::snprintf(buf, sizeof buf, "%08x%08x", rd(), rd());
    return buf;
}

// "ref" as the host parsed it (msg_ref: JSON text to echo), and its plain
// value for dedup keys (a string's characters, a number's text).
void read_ref(const aurora_host_api *host, aurora_msg *msg, const cJSON *frame, std::string &ref_json,
              std::string &ref_value) {
    aurora_str ref = host->msg_ref(msg);
    if (!ref.ptr) return;
    ref_json.assign(ref.ptr, ref.len);
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(frame, "ref");
    ref_value = cJSON_IsString(item) ? item->valuestring : ref_json;
}

void ChatPlugin::on_join_effective(const RoomRequest &r, StreamId p0, bool announce) {
    auto it = conns.find(r.conn);
    if (it == conns.end()) return;  // gone meanwhile (its read slots went with it)
    ChatConn &c = it->second;
    bool resume = r.kind == RoomRequest::Kind::Resume;
    if (!c.rooms.count(r.room)) {  // left (or refused) before the join took effect
        subscriber->request(RoomRequest{RoomRequest::Kind::Leave, r.conn, r.room, {}, {}, false});
        if (resume) reader->release(r.conn, r.room, ReadWorker::Kind::Resume);
        return;
    }
    aurora_status st = ctx.host->room_join(ctx.self, r.conn, plugin::str(r.room));
    if (st != AURORA_OK) {
        if (resume) reader->release(r.conn, r.room, ReadWorker::Kind::Resume);
        c.rooms.erase(r.room);
        if (c.current_room == r.room) c.current_room = c.rooms.empty() ? "" : *c.rooms.begin();
        subscriber->request(RoomRequest{RoomRequest::Kind::Leave, r.conn, r.room, {}, {}, false});
        if (st == AURORA_ERR_LIMIT)
            reply_error(r.conn, "too_many_rooms", "this connection is in too many rooms", r.ref_json);
        else
            reply_error(r.conn, "join_denied", "joining this room was refused", r.ref_json);
        return;
    }
    c.live.insert(r.room);
    if (events) events->joined(r.conn, c.user_id, c.username, r.room);
    SendJob p{SendJob::Kind::PresenceJoin};
    p.conn = r.conn;
    p.room = r.room;
    p.user_id = c.user_id;
    p.username = c.username;
    sender->submit(std::move(p));
    if (announce) {
        std::string joined = "{\"type\":\"joined\",\"room\":" + quoted(r.room);
        if (!r.ref_json.empty()) joined += ",\"ref\":" + r.ref_json;
        reply(r.conn, joined + "}");
    }
    // A resume into a room it was not in: it now gets live what comes after
    // p0, so the read worker replays (since, p0]. Only now, once the join
    // was allowed: a refused room's messages are never read for it.
    if (resume) {
        StreamId since = StreamId::parse(r.since).value_or(StreamId{});  // checked in handle()
        reader->resume(ResumeJob{r.conn, r.room, since, p0, r.ref_json});
    }
}

const char *busy_text(ReadWorker::Admission a, const std::string &what) {
    return a == ReadWorker::Admission::Duplicate
               ? (what == "resume" ? "a resume of this room is already running: wait for its answer"
                                   : "a presence request for this room is already running: wait for its answer")
               : "the server has too many reads waiting: try again shortly";
}

aurora_verdict ChatPlugin::handle(aurora_conn_id id, ChatConn &c, aurora_msg *msg) {
    const aurora_host_api *host = ctx.host;
    std::string_view type = plugin::view(host->msg_type(msg));
    const RequestRoute *route = nullptr;
    for (const RequestRoute &rr : kRequests) {
        if (rr.type == type) route = &rr;
    }
    if (!route) return AURORA_CONTINUE;  // someone else's (history, echo, ...)

    plugin::Json frame = plugin::parse_json(host->msg_payload(msg));
    if (!frame) return AURORA_CONTINUE;  // cannot happen: the host checked it
    Request r{id, c, msg, frame.get(), std::string(type), {}, {}, {}, false};
    read_ref(host, msg, frame.get(), r.ref_json, r.ref_value);

    // The room: "room" if given (a valid name), else the current room.
    const cJSON *room_item = cJSON_GetObjectItemCaseSensitive(frame.get(), "room");
    if (room_item && !cJSON_IsString(room_item)) return error(r, "bad_field", "'room' must be a string");
    r.room = room_item ? room_item->valuestring : c.current_room;
    r.explicit_room = room_item != nullptr;
    if (r.explicit_room && !valid_room(r.room))
        return error(r, "bad_room", "a room name is 1-64 characters of A-Z a-z 0-9 _ . : -");
    if (route->member) {
        if (r.room.empty()) return error(r, "no_room", "join a room first");
        if (!c.rooms.count(r.room)) return error(r, "not_member", "join '" + r.room + "' first");
    }
    return (this->*route->handler)(r);
}

aurora_verdict ChatPlugin::join(Request &r) {
    if (!r.explicit_room) return error(r, "bad_field", "'" + r.type + "' needs a 'room'");
    const bool is_resume = r.type == "resume";
    bool member = r.c.rooms.count(r.room) > 0;
    RoomRequest req{is_resume ? RoomRequest::Kind::Resume : RoomRequest::Kind::Join, r.id, r.room, {}, r.ref_json,
                    false};
    if (is_resume) {
        const char *since = plugin::get_string(r.frame, "since");
        if (!since || !StreamId::parse(since)) return error(r, "bad_field", "'resume' needs 'since', a message id");
        req.since = since;
    } else if (member) {
        std::string joined = "{\"type\":\"joined\",\"room\":" + quoted(r.room);
        return answer(r, r.ref_json.empty() ? joined + "}" : joined + ",\"ref\":" + r.ref_json + "}");
    }
    if (!member && r.c.rooms.size() >= ctx.s.max_rooms)
        return error(r, "too_many_rooms", "at most " + std::to_string(ctx.s.max_rooms) + " rooms per connection");
    if (is_resume) {  // bounded before anything happens: refused, it has no effect at all
        ReadWorker::Admission a = reader->admit_resume(r.id, r.room);
        if (a != ReadWorker::Admission::Ok) return error(r, "busy", busy_text(a, r.type));
    }
    r.c.rooms.insert(r.room);
    r.c.current_room = r.room;
    subscriber->request(req);  // takes effect now: on_join_effective answers
    return AURORA_DROP;
}

aurora_verdict ChatPlugin::leave(Request &r) {
    forget_room(r.id, r.c, r.room);
    ctx.host->room_leave(ctx.self, r.id, plugin::str(r.room));  // on_leave: no longer ours, nothing to do
    std::string left = "{\"type\":\"left\",\"room\":" + quoted(r.room);
    return answer(r, r.ref_json.empty() ? left + "}" : left + ",\"ref\":" + r.ref_json + "}");
}

void ChatPlugin::forget_room(aurora_conn_id id, ChatConn &c, const std::string &room) {
    if (!c.rooms.erase(room)) return;
    if (c.live.erase(room) && events) events->left(id, c.user_id, c.username, room);  // no leave for a join that never took effect
    c.last_typing_ms.erase(room);
    if (c.current_room == room) c.current_room = c.rooms.empty() ? "" : *c.rooms.begin();
    subscriber->request(RoomRequest{RoomRequest::Kind::Leave, id, room, {}, {}, false});
    SendJob p{SendJob::Kind::PresenceLeave};
    p.conn = id;
    p.room = room;
    p.user_id = c.user_id;
    p.username = c.username;
    sender->submit(std::move(p));
}

aurora_verdict ChatPlugin::send_message(Request &r) {
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(r.frame, "text");
    if (!cJSON_IsString(text)) return error(r, "bad_field", "'text' must be a string");
    // Uploads to attach (docs/protocol.md, Attachments): ids of the sender's
    // own uploads; with them, the text may be empty.
    std::vector<std::string> uploads;
    const cJSON *attachments = cJSON_GetObjectItemCaseSensitive(r.frame, "attachments");
    if (attachments && !cJSON_IsNull(attachments)) {
        const std::string shape = "'attachments' must be an array of at most " + std::to_string(kMaxAttachments) +
                                  " different upload ids";
        if (!cJSON_IsArray(attachments) || cJSON_GetArraySize(attachments) > static_cast<int>(kMaxAttachments))
            return error(r, "bad_field", shape);
        const cJSON *a = nullptr;
        cJSON_ArrayForEach(a, attachments) {
            if (!cJSON_IsString(a) || !valid_upload_id(a->valuestring) ||
                std::find(uploads.begin(), uploads.end(), a->valuestring) != uploads.end())
                return error(r, "bad_attachment", shape + " (32 lowercase hex digits each)");
            uploads.emplace_back(a->valuestring);
        }
        if (uploads.empty()) return error(r, "bad_field", shape + ", not empty");
        if (r.c.user_id.starts_with("anon-")) return error(r, "unauthorized", "anonymous users cannot attach files");
    }
    size_t n = code_points(text->valuestring);
    if (n == 0 && uploads.empty()) return error(r, "empty", "'text' is empty");
    if (n > ctx.s.max_text_chars)
        return error(r, "too_long", "'text' is longer than " + std::to_string(ctx.s.max_text_chars) + " characters");
    SendJob job = job_for(r, SendJob::Kind::Message);
    job.text = text->valuestring;
    job.msg = r.msg;
    if (!uploads.empty()) return sender->submit_attached(std::move(job), std::move(uploads));
    return sender->submit(std::move(job));
}

// A change to a message of the room (kChangeScript checks the rest: that
// it exists, its author, a tombstone, the reaction bounds).
aurora_verdict ChatPlugin::change_message(Request &r) {
    const char *target = plugin::get_string(r.frame, "id");
    std::optional<StreamId> sid = target ? StreamId::parse(target) : std::nullopt;
    if (!sid) return error(r, "bad_field", "'" + r.type + "' needs 'id', the id of a message");
    if (r.c.user_id.empty() || r.c.user_id.starts_with("anon-"))
        return error(r, "unauthorized", "sign in to edit, delete or react to messages");
    SendJob job = job_for(r, SendJob::Kind::Change);
    job.target = sid->str();  // canonical: one message, one state key, whatever the spelling
    job.msg = r.msg;
    if (r.type == "edit") {
        job.change = "edit";
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(r.frame, "text");
        if (!cJSON_IsString(text)) return error(r, "bad_field", "'text' must be a string");
        size_t n = code_points(text->valuestring);
        if (n == 0) return error(r, "empty", "'text' is empty: delete the message instead");
        if (n > ctx.s.max_text_chars)
            return error(r, "too_long", "'text' is longer than " + std::to_string(ctx.s.max_text_chars) + " characters");
        job.text = text->valuestring;
    } else if (r.type == "delete") {
        job.change = "delete";
        // Set by the rooms plugin from the sender's role, whatever the
        // client sent (room_moderators: only with rooms ahead of chat).
        const cJSON *moderator = cJSON_GetObjectItemCaseSensitive(r.frame, "moderator");
        job.moderator = ctx.s.room_moderators && cJSON_IsTrue(moderator);
    } else {
        job.change = "reaction";
        const cJSON *emoji = cJSON_GetObjectItemCaseSensitive(r.frame, "emoji");
        if (!cJSON_IsString(emoji)) return error(r, "bad_field", "'emoji' must be a string");
        if (!valid_emoji(emoji->valuestring))
            return error(r, "bad_emoji", "'emoji' must be one emoji (at most " + std::to_string(kMaxEmojiBytes) + " bytes)");
        job.emoji = emoji->valuestring;
        const cJSON *op = cJSON_GetObjectItemCaseSensitive(r.frame, "op");
        if (op && (!cJSON_IsString(op) || (std::string_view(op->valuestring) != "add" &&
                                           std::string_view(op->valuestring) != "remove")))
            return error(r, "bad_field", "'op' is \"add\" (the default) or \"remove\"");
        job.op = op ? op->valuestring : "add";
    }
    return sender->submit(std::move(job));
}

aurora_verdict ChatPlugin::typing(Request &r) {
    uint64_t now = ctx.host->now_wall_ms();
    uint64_t &last = r.c.last_typing_ms[r.room];
    if (now - last < static_cast<uint64_t>(ctx.s.typing_interval_ms)) return AURORA_DROP;  // relayed recently
    last = now;
    sender->submit(job_for(r, SendJob::Kind::Typing));
    return r.ref_json.empty() ? AURORA_DROP : answer(r, ack_json(r.ref_json, "\"room\":" + quoted(r.room)));
}

aurora_verdict ChatPlugin::mark_read(Request &r) {
    const char *mid = plugin::get_string(r.frame, "id");
    std::optional<StreamId> sid = mid ? StreamId::parse(mid) : std::nullopt;
    if (!sid) return error(r, "bad_field", "'read' needs 'id', a message id");
    SendJob job = job_for(r, SendJob::Kind::Read);
    job.id = sid->str();  // canonical: markers compare as <ms>-<seq>
    job.msg = r.msg;
    return sender->submit(std::move(job));
}

// A presence snapshot: a read, the read worker's.
aurora_verdict ChatPlugin::presence(Request &r) {
    ReadWorker::Admission a = reader->presence(r.id, r.room, r.msg, r.ref_json);
    if (a != ReadWorker::Admission::Ok) return error(r, "busy", busy_text(a, r.type));
    return AURORA_PENDING;
}

// The room's newest readers: a read, the read worker's.
aurora_verdict ChatPlugin::receipts(Request &r) {
    if (!ctx.s.read_receipts) return error(r, "disabled", "read receipts are off on this server (read_receipts)");
    ReadWorker::Admission a = reader->presence(r.id, r.room, r.msg, r.ref_json, ReadWorker::Kind::Receipts);
    if (a != ReadWorker::Admission::Ok)
        return error(r, "busy", a == ReadWorker::Admission::Duplicate ? "a receipts request for this room is already running: wait for its answer"
                                                                      : "the server has too many reads waiting: try again shortly");
    return AURORA_PENDING;
}

// ---- hooks ----

// The server API's keys: from server_api_keys_file, or the environment
// (AURORA_SERVER_API_KEYS), not both. Errors never quote a key.
std::optional<ServerKeys> server_keys(const ChatContext &ctx, std::string &err) {
    const ChatSettings &cs = ctx.s;
    if (cs.server_api_path.size() < 2 || cs.server_api_path.front() != '/' || cs.server_api_path.back() != '/' ||
        cs.server_api_path.find_first_of("?# ") != std::string::npos) {
        err = "server_api_path must start and end with / (e.g. \"/api/server/\")";
        return std::nullopt;
    }
    if (!plugin::valid_room(cs.server_api_user_id) || cs.server_api_user_id.starts_with("anon-") ||
        cs.server_api_username.empty() || cs.server_api_username.size() > 64) {
        err = "server_api_user_id must be a user id (not anon-...) and server_api_username 1-64 bytes";
        return std::nullopt;
    }
    const char *env = std::getenv("AURORA_SERVER_API_KEYS");
    const bool from_env = env && *env;
    if (from_env == !cs.server_api_keys_file.empty()) {
        err = from_env ? "server API keys are given twice: server_api_keys_file and AURORA_SERVER_API_KEYS"
                       : "server_api needs keys: server_api_keys_file or AURORA_SERVER_API_KEYS (docs/server-api.md)";
        return std::nullopt;
    }
    if (from_env) return ServerKeys::parse(env, "AURORA_SERVER_API_KEYS", err);
    std::ifstream in(cs.server_api_keys_file, std::ios::binary);
    if (!in.is_open()) {
        err = "server_api_keys_file " + cs.server_api_keys_file + ": cannot open it: " + std::strerror(errno);
        return std::nullopt;
    }
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) {
        err = "server_api_keys_file " + cs.server_api_keys_file + ": cannot read it";
        return std::nullopt;
    }
    return ServerKeys::parse(text, "server_api_keys_file " + cs.server_api_keys_file, err);
}

void spawn_reader(aurora_worker *w, void *arg) { static_cast<ChatPlugin *>(arg)->reader->run(w); }

aurora_status chat_init(const aurora_host_api *host, aurora_plugin_ctx *self, void **state) {
    auto p = std::make_unique<ChatPlugin>();
    ChatContext &ctx = p->ctx;
    ctx.host = host;
    ctx.self = self;
    // Sends and the fan-out run on the host's loop (ABI 1.2: io_watch,
    // timer_start, call_before_sleep).
    if (!AURORA_HOST_HAS(host, call_before_sleep)) {
        host->log_msg(self, AURORA_LOG_ERROR, "this host implements ABI %u.%u; chat needs 1.2 (io_watch): upgrade aurora-host",
                      host->abi_major, host->abi_minor);
        return AURORA_ERR;
    }
    std::string err;
    std::optional<ChatSettings> parsed_settings = plugin::parse_settings(host->config_json(self), kFields, err);
    if (!parsed_settings) {
        host->log_msg(self, AURORA_LOG_ERROR, "config: %s", err.c_str());
        return AURORA_ERR;
    }
    ctx.s = std::move(*parsed_settings);
    const ChatSettings &cs = ctx.s;
    if (!valid_room(cs.default_room)) {
        host->log_msg(self, AURORA_LOG_ERROR, "config: default_room \"%s\" is not a valid room name", cs.default_room.c_str());
        return AURORA_ERR;
    }
    if (cs.wait_replicas > 0 && cs.wait_timeout_ms + 250 > cs.redis_timeout_ms) {
        host->log_msg(self, AURORA_LOG_ERROR,
                      "config: wait_timeout_ms must be at least 250 ms shorter than redis_timeout_ms (a WAIT holds "
                      "the connection, and the connection's deadline must not fire first)");
        return AURORA_ERR;
    }
    if (cs.presence_refresh_s >= cs.presence_ttl_s) {
        host->log_msg(self, AURORA_LOG_ERROR, "config: presence_refresh_s must be shorter than presence_ttl_s");
        return AURORA_ERR;
    }
    auto parsed = plugin::redis_target(host, self, {}, err, /*cluster_ok=*/true);
    if (!parsed) {
        host->log_msg(self, AURORA_LOG_ERROR, "%s", err.c_str());
        return AURORA_ERR;
    }
    ctx.redis_url = *parsed;
    if (parsed->cluster()) ctx.set_shards(parsed->stream_shards);
    ctx.replica = random_replica_id();

    ChatMetrics &m = ctx.m;
    m.sent = host->metric_counter(self, "messages_total", "Messages added to the stream and published", nullptr);
    m.receipt_events = host->metric_counter(self, "receipt_events_total", "Read receipt events published (one per room and interval)", nullptr);
    m.changes = host->metric_counter(self, "message_changes_total", "Edits, deletes and reactions added to the stream and published", nullptr);
    m.duplicates = host->metric_counter(self, "duplicate_refs_total", "Retried messages answered with the first id", nullptr);
    m.send_errors = host->metric_counter(self, "send_errors_total", "Messages answered with an error", nullptr);
    m.unreplicated = host->metric_counter(
        self, "unreplicated_total", "Messages answered `unavailable` because fewer than wait_replicas replicas had them",
        nullptr);
    m.fanout = host->metric_counter(self, "fanout_payloads_total", "Payloads received from Pub/Sub and broadcast", nullptr);
    m.resumes = host->metric_counter(self, "resumes_total", "Resume requests", nullptr);
    m.resumed_messages = host->metric_counter(self, "resumed_messages_total", "Messages sent by resumes", nullptr);
    m.redis_up = host->metric_gauge(self, "redis_up", "1 while the plugin's Redis connections work", nullptr);
    m.send_seconds = host->metric_histogram(self, "send_seconds", "From frame to stored-and-published", nullptr, nullptr, 0);
    m.reads_busy = host->metric_counter(
        self, "reads_busy_total", "Resume and presence requests answered `busy` (one running, or too many waiting)",
        nullptr);
    m.presence_events = host->metric_counter(self, "presence_events_total", "Presence join/leave events published", nullptr);
    m.presence_coalesced = host->metric_counter(self, "presence_changes_coalesced_total",
                                                "Join/leave changes that cancelled out within presence_coalesce_ms", nullptr);

    p->reader = std::make_unique<ReadWorker>(ctx);
    p->sender = std::make_unique<SendPipeline>(ctx, *p->reader);
    ChatPlugin *raw = p.get();
    auto on_join = [raw](const RoomRequest &r, StreamId p0, bool announce) { raw->on_join_effective(r, p0, announce); };
    if (ctx.cluster())
        p->subscriber = std::make_unique<ShardFanout>(ctx, *p->reader, on_join);
    else
        p->subscriber = std::make_unique<FanoutSubscriber>(ctx, *p->reader, on_join);
    if (!p->sender->start() || !p->subscriber->start()) {
        host->log_msg(self, AURORA_LOG_ERROR, "cannot start the Redis connections on the host's loop");
        return AURORA_ERR;
    }
    if (cs.server_api) {
        if (ctx.cluster()) {
            host->log_msg(self, AURORA_LOG_ERROR, "config: server_api is not available in cluster mode yet (docs/server-api.md)");
            return AURORA_ERR;
        }
        std::optional<ServerKeys> keys = server_keys(ctx, err);
        if (!keys) {
            host->log_msg(self, AURORA_LOG_ERROR, "config: %s", err.c_str());
            return AURORA_ERR;
        }
        p->api = std::make_unique<ServerApi>(ctx, *p->sender, std::move(*keys));
        if (!p->api->start()) return AURORA_ERR;
    }
    if (!cs.events_stream.empty() || !cs.webhook_url.empty()) {
        if (ctx.cluster() && !cs.events_stream.empty()) {
            host->log_msg(self, AURORA_LOG_ERROR, "config: events_stream is not available in cluster mode yet");
            return AURORA_ERR;
        }
        p->events = std::make_unique<EventSink>(ctx);
        EventSink *sink = p->events.get();
        p->sender->on_stored = [sink](const SendJob &job, const std::string &id) {
            sink->stored(job.room, job.user_id, job.username, id, job.text);
        };
        if (!p->events->start()) {
            // A webhook thread that started holds `p` until the host joins it: left to it, as below.
            if (p->events->spawned()) static_cast<void>(p.release());
            return AURORA_ERR;
        }
    }
    if (host->spawn(self, "reads", spawn_reader, raw) != AURORA_OK) {
        host->log_msg(self, AURORA_LOG_ERROR, "cannot start the read thread");
        // The thread may already run on `p`: the host joins it after we
        // return, so `p` must outlive this failure. Leaked on purpose (start-up only).
        static_cast<void>(p.release());
        return AURORA_ERR;
    }
    host->log_msg(self, AURORA_LOG_INFO, "replica %s, stream %s, default room %s", ctx.replica.c_str(),
                  cs.stream.c_str(), cs.default_room.c_str());
    *state = p.release();  // owned by the host until chat_shutdown
    return AURORA_OK;
}

void chat_shutdown(void *state) { std::unique_ptr<ChatPlugin> p(static_cast<ChatPlugin *>(state)); }

void chat_on_connect_impl(void *state, aurora_conn *conn) {
    auto *p = static_cast<ChatPlugin *>(state);
    const aurora_host_api *host = p->ctx.host;
    aurora_conn_id id = host->conn_id(conn);
    ChatConn c;
    c.user_id = std::string(plugin::view(host->conn_user_id(conn)));
    c.username = std::string(plugin::view(host->conn_username(conn)));
    if (c.user_id.empty()) c.user_id = "anon-" + p->ctx.replica + "-" + std::to_string(id);
    if (c.username.empty()) c.username = "anonymous";
    if (p->api) {
        if (p->api->banned(c.user_id)) {  // in no room; its frames are refused until the close is applied
            host->send_error(p->ctx.self, id, "banned", "this user is banned", aurora_str{});
            host->close(p->ctx.self, id, ServerApi::kCloseBanned, plugin::str("banned"));
            c.banned = true;
            p->conns.emplace(id, std::move(c));
            return;
        }
        p->api->connected(id, c.user_id);
    }
    if (p->events) p->events->connected(id, c.user_id, c.username);
    bool join = p->ctx.s.auto_join;
    if (join) {
        c.rooms.insert(p->ctx.s.default_room);
        c.current_room = p->ctx.s.default_room;
    }
    p->conns.emplace(id, std::move(c));  // first: the join takes effect at once (on_join_effective)
    if (join) p->subscriber->request(RoomRequest{RoomRequest::Kind::Join, id, p->ctx.s.default_room, {}, {}, true});
}

void chat_on_disconnect_impl(void *state, aurora_conn *conn) {
    auto *p = static_cast<ChatPlugin *>(state);
    aurora_conn_id id = p->ctx.host->conn_id(conn);
    auto it = p->conns.find(id);
    if (it == p->conns.end()) return;
    for (const std::string &room : it->second.rooms) {
        SendJob leave{SendJob::Kind::PresenceLeave};
        leave.conn = id;
        leave.room = room;
        leave.user_id = it->second.user_id;
        leave.username = it->second.username;
        p->sender->submit(std::move(leave));
    }
    p->subscriber->request(RoomRequest{RoomRequest::Kind::Forget, id, {}, {}, {}, false});
    p->reader->forget(id);
    if (p->api) p->api->disconnected(id, it->second.user_id);
    if (p->events && !it->second.banned) p->events->disconnected(id, it->second.user_id, it->second.username);
    p->conns.erase(it);
}

// Taken out of a room by someone else (the rooms plugin removed the member,
// on any replica): chat stops treating it as a member. On a
// disconnect the host leaves every room first: the presence leaves go from
// here, and on_disconnect finds no rooms left.
void chat_on_leave(void *state, aurora_conn *conn, aurora_str room) {
    auto *p = static_cast<ChatPlugin *>(state);
    try {
        aurora_conn_id id = p->ctx.host->conn_id(conn);
        auto it = p->conns.find(id);
        std::string name(plugin::view(room));
        if (it == p->conns.end() || !it->second.rooms.count(name)) return;  // chat's own leave
        p->forget_room(id, it->second, name);  // whoever took it out tells the client why (rooms: member_removed)
    } catch (const std::exception &e) {
        p->ctx.log(AURORA_LOG_ERROR, std::string("on_leave: ") + e.what());
    }
}

// Nothing escapes a hook (bad_alloc is the realistic case).
void chat_on_connect(void *state, aurora_conn *conn) {
    try {
        chat_on_connect_impl(state, conn);
    } catch (const std::exception &e) {
        static_cast<ChatPlugin *>(state)->ctx.log(AURORA_LOG_ERROR, std::string("on_connect: ") + e.what());
    }
}

void chat_on_disconnect(void *state, aurora_conn *conn) {
    try {
        chat_on_disconnect_impl(state, conn);
    } catch (const std::exception &e) {
        static_cast<ChatPlugin *>(state)->ctx.log(AURORA_LOG_ERROR, std::string("on_disconnect: ") + e.what());
    }
}

aurora_verdict chat_on_message(void *state, aurora_conn *conn, aurora_msg *msg) {
    auto *p = static_cast<ChatPlugin *>(state);
    aurora_conn_id id = p->ctx.host->conn_id(conn);
    auto it = p->conns.find(id);
    if (it == p->conns.end()) return AURORA_CONTINUE;
    try {
        if (it->second.banned || (p->api && p->api->banned(it->second.user_id))) {  // its close is on the way
            p->ctx.host->msg_reply_error(msg, "banned", "this user is banned");
            return AURORA_REPLY;
        }
        return p->handle(id, it->second, msg);
    } catch (const std::exception &e) {  // nothing escapes a hook
        p->ctx.log(AURORA_LOG_ERROR, std::string("on_message: ") + e.what());
        p->ctx.host->msg_reply_error(msg, "internal", "internal error");
        return AURORA_REPLY;
    }
}

// Ready: live delivery works (subscribed) and a message would be sent.
int32_t chat_is_ready(void *state) {
    auto *p = static_cast<ChatPlugin *>(state);
    return p->subscriber->ready() && p->sender->ready() && (!p->api || p->api->ready()) ? 1 : 0;
}

aurora_plugin make_descriptor() {
    aurora_plugin d = plugin::describe("chat", "1.0.0",
                                       "rooms, Redis Pub/Sub fan-out, atomic stream + publish, resume, presence");
    d.init = chat_init;
    d.shutdown = chat_shutdown;
    d.on_connect = chat_on_connect;
    d.on_leave = chat_on_leave;
    d.on_disconnect = chat_on_disconnect;
    d.on_message = chat_on_message;
    d.is_ready = chat_is_ready;
    return d;
}

const aurora_plugin kDescriptor = make_descriptor();

}  // namespace
}  // namespace aurora::chat

extern "C" AURORA_EXPORT const aurora_plugin *aurora_plugin_entry(void) { return &aurora::chat::kDescriptor; }
