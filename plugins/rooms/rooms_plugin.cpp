// rooms: public, private and direct rooms with members and roles
// (docs/rooms.md). Place it BEFORE chat (and ingest) in the pipeline:
//
//   {"name": "rooms", "path": "plugins/rooms.so", "config": {}}
//
// What it enforces, and where:
//   - join, resume, history (WebSocket) of a room: on_message checks the
//     room (Redis cache, MongoDB on a miss) on a worker and lets the frame
//     on (CONTINUE) or answers `not_member`; the (connection, room) pair is
//     then admitted, and on_join, the host's hook behind every room_join,
//     refuses any room not admitted (the default room is always public).
//     send, typing, read markers and presence need chat's membership, which
//     needs that join: they are covered by it. Per message: nothing.
//   - a removal, or an archive, reaches every replica on <prefix>events: each
//     replica takes the member's connections out of the room there
//     (room_leave: chat's on_leave stops its sends at once) and tells the
//     room.
//   - room_create, room_invite, room_remove, room_role, room_update,
//     room_leave, dm_open, rooms: requests in chat's envelope style, run on
//     the workers (MongoDB, then the cache, then the event).
//
// THREADS: hooks and the event subscription [service]; requests and checks
// on `workers` threads of their own (blocking Redis and MongoDB).
#include <aurora/aurora.h>

#include <cjson/cJSON.h>

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "job_queue.h"
#include "json.h"
#include "mongo_pool.h"
#include "plugin_handle.h"
#include "redis_async.h"
#include "redis_connection.h"
#include "room_name.h"
#include "room_rules.h"
#include "room_store.h"
#include "settings.h"
#include "token_trust.h"

namespace {

using namespace aurora;
using namespace aurora::rooms;
using plugin::Setting;

const std::array kSettings{
    Setting{"redis_prefix", Setting::String, "\"rooms:\"", "first part of every Redis key and of the events channel"},
    Setting{"cache_ttl_s", Setting::Int, "300", "cached rooms and member lists expire after this long", 5, 86400},
    Setting{"default_room", Setting::String, "\"general\"",
            "chat's automatic room: always public, cannot be created"},
    Setting{"workers", Setting::Int, "2", "threads for checks and requests (blocking Redis and MongoDB)", 1, 64},
    Setting{"queue_max", Setting::Int, "10000", "checks and requests waiting for a worker, at most", 1, 1000000},
    Setting{"create_max_per_hour", Setting::Int, "10", "rooms one user may create per hour (0 = none)", 0, 100000},
    Setting{"list_max", Setting::Int, "100",
            "most rooms returned by `rooms` (each costs two indexed MongoDB queries: last message, unread count)", 1,
            1000},
    Setting{"messages_collection", Setting::String, "\"messages\"",
            "where ingest stores messages (the room list's last message and unread counts)"},
    Setting{"users_collection", Setting::String, "\"users\"", "where usernames are (auth's collection)"},
    Setting{"redis_timeout_ms", Setting::Int, "2000", "longest a Redis command may take", 10, 60000},
    Setting{"known_users_only", Setting::Bool, "true",
            "invitations and direct rooms by `userId` need that user in `users_collection` (off: identities from "
            "another provider, any id is taken)"},
    Setting{"rest", Setting::Bool, "true",
            "serve the REST interface (`/api/rooms`, `/api/dms`; needs `jwt.secret`, HS256 bearer tokens)"},
};

struct Conn {
    std::string user_id, username;
    std::set<std::string> admitted;  // rooms this connection may be in (checked)
};

// The most rooms one connection may be admitted to at once (chat's
// max_rooms is far below: a client cannot grow this with made-up names).
constexpr size_t kAdmittedMax = 256;
// A check overtaken by a removal is run again this many times, then `busy`.
constexpr int kCheckAttempts = 3;

struct Job {
    // Check: join/resume/history (msg). Request: room_* (msg or req).
    // Recheck: is conn still allowed in room? (after events may have been
    // missed: no msg, the answer is a cut or nothing).
    enum class Kind { Check, Request, Recheck, Moderate } kind = Kind::Check;
    aurora_msg *msg = nullptr;       // a WebSocket request, or
    aurora_http_req *req = nullptr;  // the same request over REST (docs/rooms.md)
    aurora_conn_id conn = 0;
    std::string user_id, username, type, frame, ref_json;
    std::string room;         // Recheck: this room's admissions here (connection, userId)
    std::vector<std::pair<aurora_conn_id, std::string>> admissions;
    uint64_t cuts_seen = 0;   // Check: Rooms::cuts_of(room) when it was queued
    bool answered = false;    // answer()/refuse() ran: the worker's catch must not answer again
    int attempts = 0;
};

struct Rooms : plugin::PluginHandle {
    std::string prefix, default_room, users_collection, messages_collection;
    int64_t cache_ttl_s = 300, workers = 2, create_max = 10, list_max = 100, timeout_ms = 2000;
    std::unique_ptr<plugin::MongoPool> mongo;
    std::unique_ptr<RoomStore> store;
    std::optional<plugin::RedisUrl> redis_url;
    std::unique_ptr<plugin::JobQueue<Job>> jobs;
    std::unique_ptr<plugin::AsyncRedis> events;
    bool known_users_only = true;
    bool spawned = false;  // a worker may hold this state: a failed init must leave it alive
    std::unique_ptr<plugin::TokenTrust> trust;  // REST: bearer tokens, as auth accepts them at the handshake
    // [service]
    std::map<aurora_conn_id, Conn> conns;
    std::multimap<std::string, aurora_conn_id> by_user;
    std::map<std::string, std::set<aurora_conn_id>, std::less<>> admitted_in;  // room -> connections admitted
    // Events that took someone out of a room (or may have: a resubscription),
    // counted per slot of rooms (a hash of the name), so that a check is
    // run again only if its own room (or one sharing its slot) changed.
    std::array<uint64_t, 4096> cuts{};
    uint64_t resyncs = 0;      // resubscriptions: every room may have changed
    uint64_t cuts_of(std::string_view room) const {
        return cuts[std::hash<std::string_view>{}(room) % cuts.size()] + resyncs;
    }
    void cut_happened(std::string_view room) { ++cuts[std::hash<std::string_view>{}(room) % cuts.size()]; }
    bool subscribed_once = false;
    aurora_metric *checks = nullptr, *denied = nullptr, *requests = nullptr, *failures = nullptr;
};

std::string quoted(std::string_view s) { return plugin::json_string(s); }

std::string with_ref(std::string body, const std::string &ref_json) {
    if (!ref_json.empty()) body += ",\"ref\":" + ref_json;
    return body + "}";
}

// The HTTP status of an error code (REST answers carry the code too).
uint16_t status_of(std::string_view code) {
    if (code == "not_member" || code == "forbidden") return 403;
    if (code == "not_found" || code == "no_such_user") return 404;
    if (code == "room_exists" || code == "room_archived") return 409;
    if (code == "too_many_rooms_created") return 429;
    if (code == "unavailable" || code == "busy") return 503;
    if (code == "unauthorized") return 401;
    return 400;
}

std::string error_json(const char *code, const std::string &text) {
    return "{\"error\":" + plugin::json_string(text) + ",\"code\":" + plugin::json_string(code) + "}";
}

// Each job is answered exactly once, here: a WebSocket reply (and the
// message resumed), or the HTTP response.
void answer(Rooms &st, Job &job, const std::string &json, uint16_t http_status = 200) {
    job.answered = true;
    if (job.req) {
        st.host->http_reply(job.req, http_status, nullptr, aurora_str{}, plugin::str(json));
        return;
    }
    st.host->msg_set_reply(job.msg, plugin::str(json));
    st.host->msg_resume(job.msg, AURORA_REPLY);
}

void refuse(Rooms &st, Job &job, const char *code, const std::string &text) {
    if (!job.msg && !job.req) return;  // a recheck: nobody waits for an answer
    job.answered = true;
    st.host->metric_add(st.denied, 1);
    if (job.req) {
        uint16_t status = status_of(code);
        st.host->http_reply(job.req, status, nullptr, plugin::str(status == 503 ? "Retry-After: 1\r\n" : ""),
                            plugin::str(error_json(code, text)));
        return;
    }
    st.host->msg_reply_error(job.msg, code, text.c_str());
    st.host->msg_resume(job.msg, AURORA_REPLY);
}

// ---- on the service thread ----

void admit(Rooms &st, aurora_conn_id id, Conn &c, const std::string &room) {
    c.admitted.insert(room);
    st.admitted_in[room].insert(id);
}

void unadmit(Rooms &st, aurora_conn_id id, Conn &c, const std::string &room) {
    if (!c.admitted.erase(room)) return;
    auto it = st.admitted_in.find(room);
    if (it == st.admitted_in.end()) return;
    it->second.erase(id);
    if (it->second.empty()) st.admitted_in.erase(it);
}

struct Admit {
    Rooms *st;
    Job job;
};

// A check passed on a worker. If an event took someone out meanwhile (it
// may have been this member: the worker read before the removal), the check
// runs again: a removal is never overtaken by a join it has already cut.
void admit_on_service_impl(void *arg) {
    std::unique_ptr<Admit> a(static_cast<Admit *>(arg));
    Rooms &st = *a->st;
    Job &job = a->job;
    plugin::Json frame = plugin::parse_json(job.frame);
    std::string room = plugin::get_string(frame.get(), "room");
    if (st.cuts_of(room) != job.cuts_seen) {
        if (++job.attempts >= kCheckAttempts) {
            refuse(st, job, "busy", "this room's members are changing: try again");
            return;
        }
        job.cuts_seen = st.cuts_of(room);
        Job again = job;  // copied: `job` is still answerable if the queue refuses
        if (!st.jobs->post(std::move(again))) refuse(st, job, "busy", "too many room requests waiting: try again shortly");
        return;
    }
    auto it = st.conns.find(job.conn);
    if (it != st.conns.end()) {
        if (it->second.admitted.size() >= kAdmittedMax && !it->second.admitted.count(room)) {
            refuse(st, job, "too_many_rooms", "this connection is in too many rooms");
            return;
        }
        admit(st, job.conn, it->second, room);
    }
    st.host->msg_resume(job.msg, AURORA_CONTINUE);
}

std::vector<aurora_conn_id> conns_of(Rooms &st, const std::string &user) {
    std::vector<aurora_conn_id> out;
    auto [b, e] = st.by_user.equal_range(user);
    for (auto it = b; it != e; ++it) out.push_back(it->second);
    return out;
}

// Out of the room here, at once: no more live messages; chat's on_leave
// forgets the room, so sends to it are refused (`not_member`).
void cut(Rooms &st, aurora_conn_id id, const std::string &room) {
    auto it = st.conns.find(id);
    if (it == st.conns.end()) return;
    unadmit(st, id, it->second, room);
    st.host->room_leave(st.self, id, plugin::str(room));
}

// Everyone admitted to `room` here, except the connections of `keep`'s users.
void cut_all(Rooms &st, const std::string &room, const std::set<std::string> &keep) {
    auto in = st.admitted_in.find(room);
    if (in == st.admitted_in.end()) return;
    std::vector<aurora_conn_id> out;
    for (aurora_conn_id id : in->second) {
        auto c = st.conns.find(id);
        if (c == st.conns.end() || !keep.count(c->second.user_id)) out.push_back(id);
    }
    for (aurora_conn_id id : out) cut(st, id, room);
}

struct CutArg {
    Rooms *st;
    aurora_conn_id conn;
    std::string room;
};

void cut_on_service_impl(void *arg) {
    std::unique_ptr<CutArg> c(static_cast<CutArg *>(arg));
    c->st->cut_happened(c->room);
    cut(*c->st, c->conn, c->room);
}

// Callbacks from C (call_on_service, the subscription): nothing escapes.
template <typename F>
void service_guarded(Rooms &st, const char *where, F &&f) noexcept {
    try {
        f();
    } catch (const std::exception &e) {
        st.log(AURORA_LOG_ERROR, "%s: %s", where, e.what());
    } catch (...) {
        st.log(AURORA_LOG_ERROR, "%s: unknown exception", where);
    }
}

void admit_on_service(void *arg) {
    Rooms &st = *static_cast<Admit *>(arg)->st;
    service_guarded(st, "admit", [&] { admit_on_service_impl(arg); });
}

void cut_on_service(void *arg) {
    Rooms &st = *static_cast<CutArg *>(arg)->st;
    service_guarded(st, "cut", [&] { cut_on_service_impl(arg); });
}

// An event from any replica (this one included): the room hears it, the
// member it names hears it on connections that are not in the room, and a
// removal or an archive takes effect here.
void on_event(Rooms &st, std::string_view payload) {
    plugin::Json ev = plugin::parse_json(payload);
    const char *type = plugin::get_string(ev.get(), "type");
    const char *room = plugin::get_string(ev.get(), "room");
    if (!type || !room) return;
    const char *user = plugin::get_string(ev.get(), "userId");
    std::string_view t(type);
    if (t == "room_created") {
        // A room that was open (public, nobody's) is now someone's: whoever
        // sat in it under that name goes, unless they are a member. Told to
        // nobody: the room's members are not announced to outsiders.
        st.cut_happened(room);
        std::set<std::string> keep;
        const cJSON *members = cJSON_GetObjectItemCaseSensitive(ev.get(), "members");
        const cJSON *m = nullptr;
        cJSON_ArrayForEach(m, members) if (cJSON_IsString(m)) keep.insert(m->valuestring);
        const char *kind = plugin::get_string(ev.get(), "roomType");
        if (!kind || std::string_view(kind) != "public") cut_all(st, room, keep);
        return;
    }
    aurora_str body = plugin::str(payload);
    st.host->broadcast(st.self, plugin::str(room), body, 0);
    if (user) {
        for (aurora_conn_id id : conns_of(st, user)) {
            if (!st.host->room_has(st.self, id, plugin::str(room))) st.host->send(st.self, id, body);
        }
    }
    if (t == "member_removed" && user) {
        st.cut_happened(room);
        for (aurora_conn_id id : conns_of(st, user)) cut(st, id, room);
    } else if (t == "room_updated") {
        const cJSON *archived = cJSON_GetObjectItemCaseSensitive(ev.get(), "archived");
        if (!cJSON_IsTrue(archived)) return;
        st.cut_happened(room);
        cut_all(st, room, {});
    }
}

// The subscription is confirmed again after an outage: events may have
// been missed. Checks in flight run again (resyncs), and every room with
// admissions here is checked again, one job per room: each admitted user's
// membership read once; public rooms pass at once.
void recheck_all(Rooms &st) {
    ++st.resyncs;
    size_t rooms = 0, refused = 0;
    for (auto &[room, ids] : st.admitted_in) {
        Job job;
        job.kind = Job::Kind::Recheck;
        job.room = room;
        job.type = "recheck";
        for (aurora_conn_id id : ids) {
            auto c = st.conns.find(id);
            if (c != st.conns.end()) job.admissions.emplace_back(id, c->second.user_id);
        }
        if (st.jobs->post(std::move(job))) ++rooms;
        else ++refused;
    }
    if (rooms) st.log(AURORA_LOG_INFO, "events resubscribed: checking the admissions of %zu rooms again", rooms);
    if (refused) st.log(AURORA_LOG_WARN, "events resubscribed: %zu rooms not checked again (queue full)", refused);
}

// ---- on the workers ----

const char *bad_text(const cJSON *frame, const char *key, size_t min, size_t max, std::optional<std::string> &out,
                     std::string &why) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(frame, key);
    if (!v) return nullptr;
    if (!cJSON_IsString(v)) {
        why = std::string("'") + key + "' must be a string";
        return "bad_field";
    }
    std::string error;
    if (!valid_text(v->valuestring, min, max, error)) {
        why = std::string("'") + key + "': " + error;
        return "bad_field";
    }
    out = v->valuestring;
    return nullptr;
}

std::string room_json(const RoomInfo &r, Role role) {
    std::string out = "{\"room\":" + quoted(r.id) + ",\"roomType\":\"" + name_of(r.type) + "\"";
    out += ",\"title\":" + quoted(r.title) + ",\"topic\":" + quoted(r.topic);
    out += ",\"archived\":" + std::string(r.archived ? "true" : "false");
    if (role != Role::None) out += ",\"role\":\"" + std::string(name_of(role)) + "\"";
    if (!r.names.empty()) {
        out += ",\"members\":[";
        for (size_t i = 0; i < r.names.size(); ++i)
            out += std::string(i ? "," : "") + "{\"userId\":" + quoted(r.names[i].first) + ",\"user\":" +
                   quoted(r.names[i].second) + "}";
        out += "]";
    }
    return out + "}";
}

class Worker {
public:
    explicit Worker(Rooms &st)
        : st_(st), redis_(*st.redis_url, std::chrono::milliseconds(st.timeout_ms)) {}

    void run(Job &job) {
        std::string error;
        if (job.kind == Job::Kind::Recheck) return recheck(job);
        if (job.kind == Job::Kind::Moderate) return moderate(job);
        bool ok = job.kind == Job::Kind::Check ? check(job, error) : request(job, error);
        if (!ok) {
            st_.host->metric_add(st_.failures, 1);
            st_.log(AURORA_LOG_WARN, "%s failed: %s", job.type.c_str(), error.c_str());
            refuse(st_, job, "unavailable", "rooms are unavailable; retry later");
        }
    }

private:
    int64_t now_ms() const { return static_cast<int64_t>(st_.host->now_wall_ms()); }

    // join / resume / history of a room this connection was not admitted to.
    bool check(Job &job, std::string &error) {
        st_.host->metric_add(st_.checks, 1);
        plugin::Json frame = plugin::parse_json(job.frame);
        std::string room = plugin::get_string(frame.get(), "room");
        std::optional<bool> may = may_read(room, job.user_id, error);
        if (!may) return false;
        if (!*may) {
            refuse(st_, job, "not_member", "you are not a member of '" + room + "'");
            return true;
        }
        if (job.type == "history") {  // read only: nothing to admit (ingest checks membership again)
            st_.host->msg_resume(job.msg, AURORA_CONTINUE);
            return true;
        }
        if (archived_) {
            refuse(st_, job, "room_archived", "'" + room + "' is archived: its history can still be read");
            return true;
        }
        auto a = std::make_unique<Admit>(Admit{&st_, std::move(job)});
        if (st_.host->call_on_service(st_.self, admit_on_service, a.get()) == AURORA_OK) {
            a.release();
        } else {
            st_.host->msg_resume(a->job.msg, AURORA_DROP);  // the host is stopping
        }
        return true;
    }

    // A delete frame: "moderator" set to whether the sender is an owner or
    // admin of the room, whatever the client sent (chat's room_moderators
    // lets such a delete remove others' messages).
    void moderate(Job &job) {
        plugin::Json frame = plugin::parse_json(job.frame);
        std::string room = plugin::get_string(frame.get(), "room");
        std::string error;
        std::optional<RoomInfo> info = st_.store->room(redis_, room, error);
        std::optional<Role> role = info && info->registered && !job.user_id.empty()
                                       ? st_.store->role(redis_, room, job.user_id, error)
                                       : std::optional<Role>(Role::None);
        if (!info || !role) {
            st_.host->metric_add(st_.failures, 1);
            st_.log(AURORA_LOG_WARN, "delete's role check failed: %s", error.c_str());
            return refuse(st_, job, "unavailable", "rooms are unavailable; retry later");
        }
        cJSON_DeleteItemFromObjectCaseSensitive(frame.get(), "moderator");
        cJSON_AddBoolToObject(frame.get(), "moderator", info->type != RoomType::Direct && *role >= Role::Admin);
        st_.host->msg_set_payload(job.msg, plugin::str(plugin::to_string(frame.get())));
        st_.host->msg_resume(job.msg, AURORA_CONTINUE);
    }

    // May `user` read `room`? Public rooms: anyone, even anonymous. A `dm:`
    // name nobody opened is nobody's: it cannot be sat in before it exists.
    // Sets archived_ for the caller.
    std::optional<bool> may_read(const std::string &room, const std::string &user, std::string &error) {
        archived_ = false;
        std::optional<RoomInfo> info = st_.store->room(redis_, room, error);
        if (!info) return std::nullopt;
        if (!info->registered) return !room.starts_with("dm:");
        archived_ = info->archived;
        if (info->type == RoomType::Public) return true;
        if (user.empty()) return false;
        std::optional<Role> role = st_.store->role(redis_, room, user, error);
        if (!role) return std::nullopt;
        return allowed(info->type, Action::Read, *role);
    }

    // Every replica takes out whoever sat in the room's name before it was
    // created and is not a member (on_event, room_created).
    void announce_created(const std::string &room, RoomType type, std::vector<std::string> members) {
        if (type == RoomType::Public) return;
        std::string ev = "{\"type\":\"room_created\",\"room\":" + quoted(room) + ",\"roomType\":\"" +
                         name_of(type) + "\",\"members\":[";
        for (size_t i = 0; i < members.size(); ++i) ev += (i ? "," : "") + quoted(members[i]);
        std::string error;
        if (!st_.store->publish(redis_, ev + "]}", error))
            st_.log(AURORA_LOG_WARN, "room_created for %s not published: %s", room.c_str(), error.c_str());
    }

    void recheck(Job &job) {
        std::map<std::string, bool> may_by_user;
        for (size_t i = 0; i < job.admissions.size(); ++i) {
            const auto &[conn, user] = job.admissions[i];
            auto known = may_by_user.find(user);
            if (known == may_by_user.end()) {
                std::string error;
                std::optional<bool> may = may_read(job.room, user, error);
                if (!may) {  // Redis or MongoDB failed: the rest once more, later in the queue
                    st_.log(AURORA_LOG_WARN, "recheck of %s failed: %s", job.room.c_str(), error.c_str());
                    if (++job.attempts < kCheckAttempts) {
                        Job rest = job;
                        rest.admissions.erase(rest.admissions.begin(), rest.admissions.begin() + static_cast<long>(i));
                        st_.jobs->post(std::move(rest));
                    }
                    return;
                }
                known = may_by_user.emplace(user, *may && !archived_).first;
            }
            if (known->second) continue;
            auto c = std::make_unique<CutArg>(CutArg{&st_, conn, job.room});
            if (st_.host->call_on_service(st_.self, cut_on_service, c.get()) == AURORA_OK) c.release();
        }
    }

    bool request(Job &job, std::string &error) {
        st_.host->metric_add(st_.requests, 1);
        plugin::Json frame = plugin::parse_json(job.frame);
        const std::string &t = job.type;
        if (t == "rooms") return list(job, error);
        if (t == "dm_open") return dm_open(job, frame.get(), error);
        if (t == "room_create") return create(job, frame.get(), error);

        const char *room_c = plugin::get_string(frame.get(), "room");
        if (!room_c || !plugin::valid_room(room_c)) {
            refuse(st_, job, "bad_room", "'room' must be a room name: 1-64 characters of A-Z a-z 0-9 _ . : -");
            return true;
        }
        std::string room = room_c;
        std::optional<RoomInfo> info = st_.store->room(redis_, room, error);
        if (!info) return false;
        if (!info->registered) {
            refuse(st_, job, "not_found", "no room '" + room + "' was created");
            return true;
        }
        std::optional<Role> mine = st_.store->role(redis_, room, job.user_id, error);
        if (!mine) return false;
        if (*mine == Role::None) {
            refuse(st_, job, "not_member", "you are not a member of '" + room + "'");
            return true;
        }
        if (t == "room_leave") {
            if (!allowed(info->type, Action::Leave, *mine)) {
                refuse(st_, job, "forbidden", "the owner cannot leave its room (archive it instead)");
                return true;
            }
            RoomStore::Write w = st_.store->remove_member(redis_, room, job.user_id, error);
            if (w == RoomStore::Write::Failed) return false;
            return done(job, room, "{\"type\":\"member_removed\",\"room\":" + quoted(room) +
                                       ",\"userId\":" + quoted(job.user_id) + ",\"by\":" + quoted(job.user_id) + "}",
                        w);
        }
        if (t == "room_update") return update(job, frame.get(), *info, *mine, error);

        // The rest name another member.
        std::optional<std::string> target = target_of(job, frame.get(), error, t == "room_invite");
        if (!target) return error.empty();  // answered (no such user), or failed
        std::optional<Role> theirs = st_.store->role(redis_, room, *target, error);
        if (!theirs) return false;
        if (t == "room_invite") {
            if (!allowed(info->type, Action::Invite, *mine)) return forbidden(job, "only admins and the owner invite");
            if (*theirs != Role::None) return done(job, room, "", RoomStore::Write::Ok);  // a member already: nothing changes
            RoomStore::Write w = st_.store->set_member(redis_, room, *target, Role::Member, job.user_id, now_ms(), error);
            if (w == RoomStore::Write::Failed) return false;
            return done(job, room, "{\"type\":\"member_added\",\"room\":" + quoted(room) + ",\"userId\":" +
                                       quoted(*target) + ",\"role\":\"member\",\"by\":" + quoted(job.user_id) + "}",
                        w);
        }
        if (t == "room_remove") {
            if (*theirs == Role::None) {
                refuse(st_, job, "not_member", "that user is not a member of '" + room + "'");
                return true;
            }
            if (!allowed(info->type, Action::Remove, *mine, *theirs))
                return forbidden(job, "admins remove members, the owner removes admins");
            RoomStore::Write w = st_.store->remove_member(redis_, room, *target, error);
            if (w == RoomStore::Write::Failed) return false;
            return done(job, room, "{\"type\":\"member_removed\",\"room\":" + quoted(room) + ",\"userId\":" +
                                       quoted(*target) + ",\"by\":" + quoted(job.user_id) + "}",
                        w);
        }
        if (t == "room_role") {
            const char *role_c = plugin::get_string(frame.get(), "role");
            std::optional<Role> role = role_c ? parse_role(role_c) : std::nullopt;
            if (!role || *role == Role::Owner) {
                refuse(st_, job, "bad_field", "'role' must be \"admin\" or \"member\"");
                return true;
            }
            if (*theirs == Role::None) {
                refuse(st_, job, "not_member", "that user is not a member of '" + room + "'");
                return true;
            }
            if (!allowed(info->type, Action::SetRole, *mine, *theirs)) return forbidden(job, "only the owner sets roles");
            RoomStore::Write w = st_.store->set_member(redis_, room, *target, *role, job.user_id, now_ms(), error);
            if (w == RoomStore::Write::Failed) return false;
            return done(job, room, "{\"type\":\"member_role\",\"room\":" + quoted(room) + ",\"userId\":" +
                                       quoted(*target) + ",\"role\":\"" + name_of(*role) + "\",\"by\":" +
                                       quoted(job.user_id) + "}",
                        w);
        }
        refuse(st_, job, "bad_type", "unknown rooms request");
        return true;
    }

    bool forbidden(Job &job, const char *why) {
        refuse(st_, job, "forbidden", why);
        return true;
    }

    // Announces `event` (if any) and answers. A change that is stored is
    // announced even when the cache could not be invalidated (Uncached): the
    // event is what takes a removed member out everywhere; the sender is then
    // asked to retry, which invalidates again. A failed publish is logged:
    // the replicas re-check what they admitted when their subscription comes
    // back, and the caches' TTL bounds the rest.
    bool done(Job &job, const std::string &room, const std::string &event, RoomStore::Write w) {
        if (w == RoomStore::Write::Failed) return false;
        if (!event.empty()) {
            std::string error;
            if (!st_.store->publish(redis_, event, error))
                st_.log(AURORA_LOG_WARN, "event for %s not published: %s", room.c_str(), error.c_str());
        }
        if (w == RoomStore::Write::Uncached) {
            refuse(st_, job, "unavailable", "the change is stored but the cache was not updated: send it again");
            return true;
        }
        answer(st_, job, with_ref("{\"type\":\"ack\",\"room\":" + quoted(room), job.ref_json));
        return true;
    }

    // The member a request names: "username" (looked up) or "userId". One
    // to be added (`adding`: invite, dm_open) must be a user of `users`,
    // unless known_users_only is off (identities from another provider).
    std::optional<std::string> target_of(Job &job, const cJSON *frame, std::string &error, bool adding = false) {
        const char *user_id = plugin::get_string(frame, "userId");
        if (user_id && *user_id && std::string_view(user_id).size() <= 128) {
            if (!adding || !st_.known_users_only) return std::string(user_id);
            std::optional<bool> exists = st_.store->user_exists(user_id, error);
            if (!exists) return std::nullopt;
            if (*exists) return std::string(user_id);
            refuse(st_, job, "no_such_user", std::string("no user with id '") + user_id + "'");
            return std::nullopt;
        }
        const char *username = plugin::get_string(frame, "username");
        if (!username || !*username || std::string_view(username).size() > 64) {
            refuse(st_, job, "bad_field", "name the user: 'username' (1-64 characters) or 'userId'");
            return std::nullopt;
        }
        std::optional<std::string> id = st_.store->user_id(username, error);
        if (!id && error.empty()) refuse(st_, job, "no_such_user", std::string("no user '") + username + "'");
        return id;
    }

    bool create(Job &job, const cJSON *frame, std::string &error) {
        const char *room_c = plugin::get_string(frame, "room");
        if (!room_c || !plugin::valid_room(room_c)) {
            refuse(st_, job, "bad_room", "'room' must be a room name: 1-64 characters of A-Z a-z 0-9 _ . : -");
            return true;
        }
        std::string room = room_c;
        if (room == st_.default_room || room.starts_with("dm:")) {
            refuse(st_, job, "reserved_room", "'" + room + "' is reserved");
            return true;
        }
        const char *vis = plugin::get_string(frame, "visibility");
        std::optional<RoomType> type = vis ? parse_type(vis) : std::nullopt;
        if (!type || *type == RoomType::Direct) {
            refuse(st_, job, "bad_field", "'visibility' must be \"public\" or \"private\"");
            return true;
        }
        std::optional<std::string> title, topic;
        std::string why;
        if (const char *code = bad_text(frame, "title", 1, 100, title, why)) return refuse(st_, job, code, why), true;
        if (const char *code = bad_text(frame, "topic", 0, 500, topic, why)) return refuse(st_, job, code, why), true;
        std::optional<bool> fits = st_.store->count_creation(redis_, job.user_id, st_.create_max, error);
        if (!fits) return false;
        if (!*fits) {
            refuse(st_, job, "too_many_rooms_created",
                   "at most " + std::to_string(st_.create_max) + " rooms per user per hour");
            return true;
        }
        RoomInfo info;
        info.id = room;
        info.registered = true;
        info.type = *type;
        info.title = title.value_or(room);
        info.topic = topic.value_or("");
        info.owner = job.user_id;
        switch (st_.store->create(redis_, info, now_ms(), error)) {
        case RoomStore::Created::Failed: return false;
        case RoomStore::Created::Exists: refuse(st_, job, "room_exists", "'" + room + "' exists"); return true;
        case RoomStore::Created::Ok: break;
        }
        announce_created(info.id, info.type, {job.user_id});
        std::string body = room_json(info, Role::Owner);
        body.pop_back();
        answer(st_, job, with_ref("{\"type\":\"ack\"," + body.substr(1), job.ref_json), 201);
        return true;
    }

    bool update(Job &job, const cJSON *frame, const RoomInfo &info, Role mine, std::string &error) {
        std::optional<std::string> title, topic;
        std::string why;
        if (const char *code = bad_text(frame, "title", 1, 100, title, why)) return refuse(st_, job, code, why), true;
        if (const char *code = bad_text(frame, "topic", 0, 500, topic, why)) return refuse(st_, job, code, why), true;
        const cJSON *arch = cJSON_GetObjectItemCaseSensitive(frame, "archived");
        if (arch && !cJSON_IsBool(arch)) {
            refuse(st_, job, "bad_field", "'archived' must be true or false");
            return true;
        }
        std::optional<bool> archived;
        if (arch) archived = cJSON_IsTrue(arch);
        if (!title && !topic && !archived) {
            refuse(st_, job, "bad_field", "nothing to change: 'title', 'topic' or 'archived'");
            return true;
        }
        if ((title || topic) && !allowed(info.type, Action::Update, mine))
            return forbidden(job, "only admins and the owner change the title or topic");
        if (archived && !allowed(info.type, Action::Archive, mine)) return forbidden(job, "only the owner archives");
        RoomStore::Write w = st_.store->update(redis_, info.id, title, topic, archived, now_ms(), error);
            if (w == RoomStore::Write::Failed) return false;
        RoomInfo after = info;
        if (title) after.title = *title;
        if (topic) after.topic = *topic;
        if (archived) after.archived = *archived;
        std::string ev = room_json(after, Role::None);
        ev.pop_back();
        return done(job, info.id,
                    "{\"type\":\"room_updated\"," + ev.substr(1) + ",\"by\":" + quoted(job.user_id) + "}", w);
    }

    bool dm_open(Job &job, const cJSON *frame, std::string &error) {
        std::optional<std::string> other = target_of(job, frame, error, true);
        if (!other) return error.empty();
        if (*other == job.user_id) {
            refuse(st_, job, "dm_self", "a direct room needs another user");
            return true;
        }
        const char *named = plugin::get_string(frame, "username");
        bool created = false;
        std::optional<RoomInfo> info = st_.store->direct(redis_, job.user_id, job.username, *other,
                                                         plugin::get_string(frame, "userId") ? "" : (named ? named : ""),
                                                         now_ms(), created, error);
        if (!info) return false;
        if (created) {  // announced once: opening it again tells nobody anything
            announce_created(info->id, RoomType::Direct, {job.user_id, *other});
            std::string ev = "{\"type\":\"member_added\",\"room\":" + quoted(info->id) + ",\"roomType\":\"direct\"" +
                             ",\"userId\":" + quoted(*other) + ",\"role\":\"member\",\"by\":" + quoted(job.user_id) + "}";
            if (!st_.store->publish(redis_, ev, error))
                st_.log(AURORA_LOG_WARN, "dm event not published: %s", error.c_str());
        }
        std::string body = room_json(*info, Role::Member);
        body.pop_back();
        answer(st_, job, with_ref("{\"type\":\"ack\"," + body.substr(1) + ",\"userId\":" + quoted(*other), job.ref_json));
        return true;
    }

    bool list(Job &job, std::string &error) {
        std::optional<std::vector<Membership>> rooms =
            st_.store->rooms_of(job.user_id, static_cast<size_t>(st_.list_max), error);
        plugin::Json frame = plugin::parse_json(job.frame);
        const bool activity = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(frame.get(), "activity"));
        if (!rooms || (activity && !st_.store->activity(redis_, job.user_id, st_.messages_collection, *rooms, error)))
            return false;
        std::string out = "{\"type\":\"rooms\",\"rooms\":[";
        bool first = true;
        for (const Membership &m : *rooms) {
            if (!first) out += ",";
            first = false;
            std::string one = room_json(m.room, m.role);
            one.pop_back();
            one += ",\"unread\":" + std::to_string(m.unread);
            if (!m.last_id.empty())
                one += ",\"last\":{\"id\":" + quoted(m.last_id) + ",\"user\":" + quoted(m.last_user) +
                       ",\"text\":" + quoted(m.last_text) + ",\"ts\":" + std::to_string(m.last_ms) + "}";
            out += one + "}";
        }
        answer(st_, job, with_ref(out + "]", job.ref_json));
        return true;
    }

    Rooms &st_;
    plugin::RedisConnection redis_;
    bool archived_ = false;  // may_read's room
};

void worker_main(aurora_worker *w, void *arg) {
    auto *st = static_cast<Rooms *>(arg);
    Worker worker(*st);
    plugin::JobQueue<Job>::Attach at(*st->jobs, w);
    while (!st->host->worker_should_stop(w)) {
        if (auto job = st->jobs->pop()) {
            try {
                worker.run(*job);
            } catch (const std::exception &e) {
                st->log(AURORA_LOG_ERROR, "worker: %s", e.what());
                if (!job->answered) refuse(*st, *job, "unavailable", "internal error");
            }
        }
        else st->host->worker_wait(w, 1000);
    }
    for (Job &job : st->jobs->close()) {
        refuse(*st, job, "unavailable", "the server is stopping");
    }
}

// ---- REST (service thread): the same requests, mapped from method and path ----
//
//   GET    /api/rooms                          rooms
//   POST   /api/rooms                {room, visibility, title?, topic?}   room_create
//   PATCH  /api/rooms/{room}         {title?, topic?, archived?}          room_update
//   POST   /api/rooms/{room}/members {username | userId}                  room_invite
//   PATCH  /api/rooms/{room}/members/{userId}  {role}                     room_role
//   DELETE /api/rooms/{room}/members/{userId}                             room_remove
//   POST   /api/rooms/{room}/leave                                        room_leave
//   POST   /api/dms                  {username | userId}                  dm_open
//
// GET /api/rooms/{room}/messages is ingest's (history).

void http_reply_error(Rooms &st, aurora_http_req *req, const char *code, const std::string &text,
                      const char *extra = "") {
    st.host->http_reply(req, status_of(code), nullptr, plugin::str(extra), plugin::str(error_json(code, text)));
}

void on_http_impl(void *arg, aurora_http_req *req) {
    auto &st = *static_cast<Rooms *>(arg);
    const aurora_host_api *h = st.host;
    std::string_view method = plugin::view(h->http_method(req)), path = plugin::view(h->http_path(req));
    plugin::VerifiedToken v = st.trust->verify_request(h, req, 30);
    if (!v.ok) return http_reply_error(st, req, "unauthorized", v.error, "WWW-Authenticate: Bearer\r\n");

    const char *code = "not_found";
    std::optional<RestRequest> r = rest_request(method, path, plugin::view(h->http_body(req)), code);
    if (!r)
        return http_reply_error(st, req, code, std::string_view(code) == "bad_json" ? "the body must be a JSON object, each key once"
                                                                                    : "no such room request: see docs/rooms.md");
    Job job;
    job.kind = Job::Kind::Request;
    job.req = req;
    job.user_id = v.user_id;
    job.username = v.username;
    job.type = std::move(r->type);
    job.frame = std::move(r->frame);
    if (!st.jobs->post(std::move(job)))
        http_reply_error(st, req, "busy", "too many room requests waiting: try again shortly", "Retry-After: 1\r\n");
}

// ---- hooks ----

void on_http(void *arg, aurora_http_req *req);  // on_http_impl, guarded (below)

aurora_status rooms_init_impl(std::unique_ptr<Rooms> &st, const aurora_host_api *host, aurora_plugin_ctx *self,
                              void **state_out) {
    st = std::make_unique<Rooms>();
    st->host = host;
    st->self = self;
    std::string error;
    auto s = plugin::Settings::parse(host->config_json(self), kSettings, error);
    if (!s) {
        st->log(AURORA_LOG_ERROR, "%s", error.c_str());
        return AURORA_ERR_INVALID;
    }
    st->prefix = s->string("redis_prefix");
    st->cache_ttl_s = s->integer("cache_ttl_s");
    st->default_room = s->string("default_room");
    st->workers = s->integer("workers");
    st->create_max = s->integer("create_max_per_hour");
    st->list_max = s->integer("list_max");
    st->users_collection = s->string("users_collection");
    st->messages_collection = s->string("messages_collection");
    st->known_users_only = s->boolean("known_users_only");
    st->timeout_ms = s->integer("redis_timeout_ms");
    if (!plugin::valid_room(st->default_room)) {
        st->log(AURORA_LOG_ERROR, "config: default_room is not a valid room name");
        return AURORA_ERR_INVALID;
    }
    st->redis_url = plugin::redis_target(host, self, {}, error, /*cluster_ok=*/false);
    if (!st->redis_url) {
        st->log(AURORA_LOG_ERROR, "%s", error.c_str());
        return AURORA_ERR_INVALID;
    }
    std::string mongo_url(plugin::view(host->setting(self, "mongo.url")));
    if (mongo_url.empty()) mongo_url = "mongodb://127.0.0.1:27017/aurorachat";
    st->mongo = plugin::MongoPool::create(mongo_url, error, host, self);
    if (!st->mongo) {
        st->log(AURORA_LOG_ERROR, "mongo.url: %s", error.c_str());
        return AURORA_ERR_INVALID;
    }
    st->store = std::make_unique<RoomStore>(*st->mongo, st->prefix, static_cast<int>(st->cache_ttl_s),
                                            st->users_collection);
    if (!st->store->ensure_indexes(error))  // MongoDB may come later: the requests will say
        st->log(AURORA_LOG_WARN, "room_members indexes: %s", error.c_str());
    st->checks = host->metric_counter(self, "checks_total", "Joins, resumes and history requests checked", nullptr);
    st->denied = host->metric_counter(self, "refused_total", "Checks and requests refused (not a member, not allowed, bad input)", nullptr);
    st->requests = host->metric_counter(self, "requests_total", "Room requests (create, invite, ...)", nullptr);
    st->failures = host->metric_counter(self, "failures_total", "Checks and requests answered unavailable", nullptr);
    st->jobs = std::make_unique<plugin::JobQueue<Job>>(host, static_cast<size_t>(s->integer("queue_max")));
    st->events = std::make_unique<plugin::AsyncRedis>(plugin::PluginHandle{host, self}, *st->redis_url,
                                                      std::chrono::milliseconds(st->timeout_ms), 16, "rooms-events");
    Rooms *raw = st.get();
    st->events->on_up([raw] {
        raw->events->subscribe({"SUBSCRIBE", raw->store->events_channel()}, [raw](const redisReply *r) {
            service_guarded(*raw, "event", [&] {
                if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || r->element[0]->type != REDIS_REPLY_STRING) return;
                std::string_view kind(r->element[0]->str, r->element[0]->len);
                if (kind == "message") {  // ["message", channel, payload]
                    on_event(*raw, std::string_view(r->element[2]->str, r->element[2]->len));
                } else if (kind == "subscribe") {  // confirmed: from now on no event is missed
                    if (raw->subscribed_once) recheck_all(*raw);
                    raw->subscribed_once = true;
                }
            });
        });
    });
    if (!st->events->start()) return AURORA_ERR_INVALID;
    if (s->boolean("rest")) {
        st->trust = plugin::TokenTrust::create(host, self, std::string(plugin::view(host->setting(self, "jwt.secret"))),
                                               JWT_ALG_HS256, error);
        if (!st->trust) {
            st->log(AURORA_LOG_ERROR, "config: %s", error.c_str());
            return AURORA_ERR_INVALID;
        }
        if (!st->trust->accepts_any()) {
            st->log(AURORA_LOG_ERROR, "config: rest needs jwt.secret (config \"jwt\": {\"secret\"} or AURORA_JWT_SECRET) "
                                      "or an identity provider's keys (jwt.keys_file, jwt.jwks_url), or set \"rest\": false");
            return AURORA_ERR_INVALID;
        }
        struct Route {
            const char *method, *path;
            int32_t prefix;
        };
        for (Route r : {Route{"GET", "/api/rooms", 0}, Route{"POST", "/api/rooms", 0}, Route{"POST", "/api/rooms/", 1},
                        Route{"PATCH", "/api/rooms/", 1}, Route{"DELETE", "/api/rooms/", 1}, Route{"POST", "/api/dms", 0}}) {
            if (host->http_route(self, r.method, r.path, r.prefix, on_http, raw) != AURORA_OK) {
                st->log(AURORA_LOG_ERROR, "cannot route %s %s", r.method, r.path);
                return AURORA_ERR_INVALID;
            }
        }
    }
    for (int64_t i = 0; i < st->workers; ++i) {
        st->spawned = true;
        if (host->spawn(self, ("rooms-" + std::to_string(i)).c_str(), worker_main, raw) != AURORA_OK) {
            // Workers already started hold `raw` until the host joins them:
            // the state is left to them (as chat does), never freed under them.
            if (i > 0) (void)st.release();
            return AURORA_ERR_INVALID;
        }
    }
    if (st->trust && st->trust->start() != AURORA_OK) {
        st->log(AURORA_LOG_ERROR, "cannot start the token key refresher");
        if (st->workers > 0) (void)st.release();  // the workers hold it until the host joins them
        return AURORA_ERR_INVALID;
    }
    st->log(AURORA_LOG_INFO, "ready: %lld workers, cache %llds, events on %s", static_cast<long long>(st->workers),
            static_cast<long long>(st->cache_ttl_s), st->store->events_channel().c_str());
    *state_out = plugin::give_state(std::move(st));
    return AURORA_OK;
}

// No exception crosses the ABI: one thrown after a worker started leaves
// the state to the workers (the host joins them, then exits).
aurora_status rooms_init(const aurora_host_api *host, aurora_plugin_ctx *self, void **state_out) {
    std::unique_ptr<Rooms> st;
    try {
        return rooms_init_impl(st, host, self, state_out);
    } catch (const std::exception &e) {
        host->log_msg(self, AURORA_LOG_ERROR, "init failed: %s", e.what());
    } catch (...) {
        host->log_msg(self, AURORA_LOG_ERROR, "init failed: unknown exception");
    }
    if (st && st->spawned) (void)st.release();
    return AURORA_ERR;
}

void rooms_shutdown(void *state) { plugin::take_state<Rooms>(state); }

void rooms_on_connect_impl(void *state, aurora_conn *conn) {
    auto *st = static_cast<Rooms *>(state);
    aurora_conn_id id = st->host->conn_id(conn);
    Conn c;
    c.user_id = std::string(plugin::view(st->host->conn_user_id(conn)));
    c.username = std::string(plugin::view(st->host->conn_username(conn)));
    if (!c.user_id.empty()) st->by_user.emplace(c.user_id, id);
    st->conns.emplace(id, std::move(c));
}

void rooms_on_disconnect_impl(void *state, aurora_conn *conn) {
    auto *st = static_cast<Rooms *>(state);
    aurora_conn_id id = st->host->conn_id(conn);
    auto it = st->conns.find(id);
    if (it == st->conns.end()) return;
    for (const std::string &room : std::set<std::string>(it->second.admitted)) unadmit(*st, id, it->second, room);
    auto [b, e] = st->by_user.equal_range(it->second.user_id);
    for (auto u = b; u != e; ++u) {
        if (u->second == id) {
            st->by_user.erase(u);
            break;
        }
    }
    st->conns.erase(it);
}

constexpr std::array<std::string_view, 8> kRequests{"room_create", "room_invite", "room_remove", "room_role",
                                                    "room_update", "room_leave",  "dm_open",     "rooms"};

aurora_verdict rooms_on_message_impl(void *state, aurora_conn *conn, aurora_msg *msg) {
    auto *st = static_cast<Rooms *>(state);
    const aurora_host_api *h = st->host;
    std::string_view type = plugin::view(h->msg_type(msg));
    bool check = type == "join" || type == "resume" || type == "history";
    bool moderate = type == "delete";
    bool request = !check && !moderate && std::find(kRequests.begin(), kRequests.end(), type) != kRequests.end();
    if (!check && !request && !moderate) return AURORA_CONTINUE;
    aurora_conn_id id = h->conn_id(conn);
    auto it = st->conns.find(id);
    if (it == st->conns.end()) return AURORA_CONTINUE;
    Conn &c = it->second;
    plugin::Json frame = plugin::parse_json(h->msg_payload(msg));
    if (moderate) {
        // The room chat will use: "room", else the current one (chat keeps
        // it; a delete without "room" is refused moderation here).
        const char *room = plugin::get_string(frame.get(), "room");
        if (!room || !plugin::valid_room(room) || c.user_id.empty()) {
            if (!cJSON_GetObjectItemCaseSensitive(frame.get(), "moderator")) return AURORA_CONTINUE;
            cJSON_DeleteItemFromObjectCaseSensitive(frame.get(), "moderator");
            h->msg_set_payload(msg, plugin::str(plugin::to_string(frame.get())));
            return AURORA_CONTINUE;
        }
    }
    if (check) {
        const char *room = plugin::get_string(frame.get(), "room");
        // Not a room name: chat or ingest answers that (bad_field, bad_room).
        if (!room || !plugin::valid_room(room) || room == st->default_room || c.admitted.count(room))
            return AURORA_CONTINUE;
    }
    if (request && c.user_id.empty()) {  // anonymous connections join public rooms, nothing more
        h->msg_reply_error(msg, "unauthorized", "rooms need a signed-in user");
        return AURORA_REPLY;
    }
    Job job;
    job.kind = check ? Job::Kind::Check : moderate ? Job::Kind::Moderate : Job::Kind::Request;
    job.msg = msg;
    job.conn = id;
    job.user_id = c.user_id;
    job.username = c.username;
    job.type = std::string(type);
    job.frame = std::string(plugin::view(h->msg_payload(msg)));
    if (check) job.cuts_seen = st->cuts_of(plugin::get_string(frame.get(), "room"));
    aurora_str ref = h->msg_ref(msg);
    if (ref.ptr) job.ref_json.assign(ref.ptr, ref.len);
    if (!st->jobs->post(std::move(job))) {
        h->msg_reply_error(msg, "busy", "too many room requests waiting: try again shortly");
        return AURORA_REPLY;
    }
    return AURORA_PENDING;
}

aurora_verdict rooms_on_join_impl(void *state, aurora_conn *conn, aurora_str room) {
    auto *st = static_cast<Rooms *>(state);
    std::string_view r = plugin::view(room);
    if (r == st->default_room) return AURORA_CONTINUE;
    auto it = st->conns.find(st->host->conn_id(conn));
    if (it != st->conns.end() && it->second.admitted.count(std::string(r))) return AURORA_CONTINUE;
    return AURORA_DROP;
}

// Out of a room, however (a leave, a cut, a disconnect): the next join is
// checked again.
void rooms_on_leave_impl(void *state, aurora_conn *conn, aurora_str room) {
    auto *st = static_cast<Rooms *>(state);
    aurora_conn_id id = st->host->conn_id(conn);
    auto it = st->conns.find(id);
    if (it != st->conns.end()) unadmit(*st, id, it->second, std::string(plugin::view(room)));
}

// Nothing escapes a hook or a handler across the ABI (bad_alloc is the
// realistic case): logged, and the safe answer given.
template <typename R, typename F>
R guarded(void *state, const char *where, R fallback, F &&f) noexcept {
    try {
        return f();
    } catch (const std::exception &e) {
        static_cast<Rooms *>(state)->log(AURORA_LOG_ERROR, "%s: %s", where, e.what());
    } catch (...) {
        static_cast<Rooms *>(state)->log(AURORA_LOG_ERROR, "%s: unknown exception", where);
    }
    return fallback;
}

void rooms_on_connect(void *state, aurora_conn *conn) {
    guarded(state, "on_connect", 0, [&] { return rooms_on_connect_impl(state, conn), 0; });
}
void rooms_on_disconnect(void *state, aurora_conn *conn) {
    guarded(state, "on_disconnect", 0, [&] { return rooms_on_disconnect_impl(state, conn), 0; });
}
void rooms_on_leave(void *state, aurora_conn *conn, aurora_str room) {
    guarded(state, "on_leave", 0, [&] { return rooms_on_leave_impl(state, conn, room), 0; });
}
aurora_verdict rooms_on_message(void *state, aurora_conn *conn, aurora_msg *msg) {
    return guarded<aurora_verdict>(state, "on_message", AURORA_DROP, [&] { return rooms_on_message_impl(state, conn, msg); });
}
aurora_verdict rooms_on_join(void *state, aurora_conn *conn, aurora_str room) {
    return guarded<aurora_verdict>(state, "on_join", AURORA_DROP, [&] { return rooms_on_join_impl(state, conn, room); });
}
void on_http(void *arg, aurora_http_req *req) {
    bool answered = guarded(arg, "http", false, [&] { return on_http_impl(arg, req), true; });
    if (!answered) http_reply_error(*static_cast<Rooms *>(arg), req, "unavailable", "internal error");
}

const aurora_plugin kDescriptor = [] {
    aurora_plugin d = plugin::describe("rooms", "1.0.0", "public, private and direct rooms with members and roles");
    d.init = rooms_init;
    d.shutdown = rooms_shutdown;
    d.on_connect = rooms_on_connect;
    d.on_disconnect = rooms_on_disconnect;
    d.on_message = rooms_on_message;
    d.on_join = rooms_on_join;
    d.on_leave = rooms_on_leave;
    return d;
}();

}  // namespace

extern "C" AURORA_EXPORT const aurora_plugin *aurora_plugin_entry(void) { return &kDescriptor; }
