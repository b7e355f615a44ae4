#include "read_worker.h"

#include <algorithm>

#include "chat_protocol.h"
#include "chat_scripts.h"
#include "json.h"

namespace aurora::chat {

namespace {

constexpr size_t kRangeChunk = 500;

std::string_view text(const redisReply *r) {
    return r && r->type == REDIS_REPLY_STRING ? std::string_view(r->str, r->len) : std::string_view();
}

std::string_view field(const redisReply *fields, std::string_view name) {
    if (!fields || fields->type != REDIS_REPLY_ARRAY) return {};
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        if (text(fields->element[i]) == name) return text(fields->element[i + 1]);
    }
    return {};
}

}  // namespace

// Every command's reply, in order; false if Redis cannot be reached. Reads
// are idempotent, so a connection found broken (idle through a Redis
// restart, say) is made again and the whole batch sent once more.
bool ReadWorker::round_trip(uint16_t slot, const std::vector<std::vector<std::string>> &commands,
                            std::vector<plugin::RedisReply> &replies, std::string &err) {
    for (int attempt = 0; attempt < 2; ++attempt) {
        // Cluster mode: a connection that failed may be to a master that was
        // failed over: the map is asked again before the second attempt,
        // which sends the commands one at a time through RedisCluster (it
        // follows MOVED and ASK, a slot being migrated).
        if (attempt > 0 && cluster_) {
            cluster_->refresh(err);
            replies.clear();
            for (const auto &argv : commands) {
                plugin::RedisReply r = cluster_->command(slot, argv, err);
                if (!r) break;
                replies.push_back(std::move(r));
            }
            if (replies.size() == commands.size()) return true;
            continue;
        }
        plugin::RedisConnection *c = cluster_ ? cluster_->connection(slot, err) : &redis_;
        if (!c || !c->ensure(err)) continue;
        for (const auto &argv : commands) c->append(argv);
        replies.clear();
        while (replies.size() < commands.size()) {
            plugin::RedisReply r = c->read(err);
            if (!r) break;  // read() reset the connection
            replies.push_back(std::move(r));
        }
        if (replies.size() != commands.size()) continue;
        // Cluster mode: a slot that moved (MOVED corrects the map) or is
        // moving (ASK) is read again once, from where the map says now.
        bool moved = cluster_ && std::any_of(replies.begin(), replies.end(), [&](const plugin::RedisReply &r) {
                         return cluster_->redirected(r.get(), c->server());
                     });
        if (!moved) return true;
        err = "the slot moved";
    }
    ctx_.log(AURORA_LOG_WARN, "read worker: " + err);
    return false;
}

ReadWorker::ReadWorker(const ChatContext &ctx)
    : ctx_(ctx), redis_(ctx.redis_url, std::chrono::milliseconds(ctx.s.redis_timeout_ms)) {
    if (ctx.redis_url.cluster())
        cluster_ = std::make_unique<plugin::RedisCluster>(ctx.redis_url.nodes, ctx.redis_url.password,
                                                          std::chrono::milliseconds(ctx.s.redis_timeout_ms));
}

// ---- any thread ----

ReadWorker::Admission ReadWorker::take_slot(const Slot &slot) {
    Admission a = Admission::Ok;
    if (slots_.count(slot)) {
        a = Admission::Duplicate;
    } else if (stopped_ || slots_.size() >= ctx_.s.read_queue_max) {
        a = Admission::Full;
    } else {
        slots_.insert(slot);
    }
    if (a != Admission::Ok) ctx_.host->metric_add(ctx_.m.reads_busy, 1);
    return a;
}

// mu_ held: the thread clears worker_ under mu_ before it returns, so `w`
// cannot end while we wake it.
void ReadWorker::wake() {
    if (worker_) ctx_.host->worker_wake(worker_);
}

ReadWorker::Admission ReadWorker::admit_resume(aurora_conn_id conn, const std::string &room) {
    std::lock_guard lock(mu_);
    return take_slot(Slot{conn, room, Kind::Resume});
}

void ReadWorker::resume(ResumeJob job) {
    {
        std::lock_guard lock(mu_);
        if (!slots_.count(Slot{job.conn, job.room, Kind::Resume})) return;  // the connection has gone
        resumes_[job.conn].push_back(std::move(job));
        wake();
    }
}

ReadWorker::Admission ReadWorker::presence(aurora_conn_id conn, const std::string &room, aurora_msg *msg,
                                           std::string ref_json, Kind kind) {
    {
        std::lock_guard lock(mu_);
        Admission a = take_slot(Slot{conn, room, kind});
        if (a != Admission::Ok) return a;
        snapshots_.push_back(SnapshotJob{conn, room, msg, std::move(ref_json), kind});
        wake();
    }
    return Admission::Ok;
}

void ReadWorker::join_snapshot(aurora_conn_id conn, const std::string &room) {
    {
        std::lock_guard lock(mu_);
        if (stopped_) return;
        join_snapshots_.emplace(conn, room);
        wake();
    }
}

void ReadWorker::release(aurora_conn_id conn, const std::string &room, Kind kind) {
    std::lock_guard lock(mu_);
    slots_.erase(Slot{conn, room, kind});
}

void ReadWorker::forget(aurora_conn_id conn) {
    std::lock_guard lock(mu_);
    // Slots and join snapshots are ordered by connection first: one range each.
    auto s = slots_.lower_bound(Slot{conn, {}, Kind::Resume});
    while (s != slots_.end() && s->conn == conn) s = slots_.erase(s);
    auto j = join_snapshots_.lower_bound({conn, {}});
    while (j != join_snapshots_.end() && j->first == conn) j = join_snapshots_.erase(j);
    resumes_.erase(conn);
    // Its presence requests stay queued: a PENDING message is always resumed
    // (the host discards the answer).
}

// ---- the worker's thread ----

std::vector<ReadWorker::SnapshotJob> ReadWorker::take_snapshots() {
    std::lock_guard lock(mu_);
    std::vector<SnapshotJob> jobs = std::move(snapshots_);
    snapshots_.clear();
    for (const auto &[conn, room] : join_snapshots_) jobs.push_back(SnapshotJob{conn, room, nullptr, {}, Kind::Presence});
    join_snapshots_.clear();
    return jobs;
}

bool ReadWorker::take_resume(ResumeJob &job) {
    std::lock_guard lock(mu_);
    if (resumes_.empty()) return false;
    auto it = resumes_.upper_bound(last_served_);  // the next connection after the last one served
    if (it == resumes_.end()) it = resumes_.begin();
    job = std::move(it->second.front());
    it->second.pop_front();
    last_served_ = it->first;
    if (it->second.empty()) resumes_.erase(it);
    return true;
}

void ReadWorker::run(aurora_worker *w) {
    {
        std::lock_guard lock(mu_);
        worker_ = w;
    }
    while (!ctx_.host->worker_should_stop(w)) {
        std::vector<SnapshotJob> snapshots = take_snapshots();
        if (!snapshots.empty()) serve_snapshots(snapshots);
        ResumeJob job;
        if (take_resume(job)) serve_resume(job);
        bool idle;
        {
            std::lock_guard lock(mu_);
            idle = snapshots_.empty() && join_snapshots_.empty() && resumes_.empty();
        }
        if (idle) ctx_.host->worker_wait(w, 1000);  // worker_wake() ends it early
    }
    std::vector<SnapshotJob> left;
    {
        std::lock_guard lock(mu_);
        stopped_ = true;  // nothing is admitted from here on
        worker_ = nullptr;
        left = std::move(snapshots_);
        snapshots_.clear();
    }
    // Shutting down: a PENDING message must always be resumed.
    for (SnapshotJob &job : left) answer_error(job, "unavailable", "the server is shutting down");
}

// The host's error frame with the job's ref, as answer() delivers.
void ReadWorker::answer_error(SnapshotJob &job, const char *code, const char *message) {
    if (!job.msg) {
        ctx_.host->send_error(ctx_.self, job.conn, code, message, plugin::str(job.ref_json));
        return;
    }
    release(job.conn, job.room, job.kind);
    ctx_.host->msg_reply_error(job.msg, code, message);
    ctx_.host->msg_resume(job.msg, AURORA_REPLY);
    job.msg = nullptr;
}

void ReadWorker::answer(SnapshotJob &job, const std::string &json) {
    if (!job.msg) {
        ctx_.host->send(ctx_.self, job.conn, plugin::str(json));
        return;
    }
    release(job.conn, job.room, job.kind);  // first: the client may ask again as soon as it has the answer
    ctx_.host->msg_set_reply(job.msg, plugin::str(json));
    ctx_.host->msg_resume(job.msg, AURORA_REPLY);
    job.msg = nullptr;
}

// One round trip for every pending snapshot: expire, list and count each
// room once, however many connections asked for it.
void ReadWorker::serve_snapshots(std::vector<SnapshotJob> &jobs) {
    std::map<std::string, std::vector<SnapshotJob *>> by_room;
    for (SnapshotJob &job : jobs) by_room[job.room].push_back(&job);
    const std::string now_ms = std::to_string(ctx_.host->now_wall_ms());
    // At most presence_snapshot_max connections (with the total): a full
    // list per join would cost O(members) bytes per join.
    const std::string last = std::to_string(ctx_.s.presence_snapshot_max - 1);
    // One round trip per slot (one in all outside cluster mode).
    std::map<uint16_t, std::vector<const std::string *>> by_slot;
    for (const auto &[room, list] : by_room) by_slot[ctx_.slot(room)].push_back(&room);
    for (const auto &[slot, rooms] : by_slot) {
        std::vector<std::vector<std::string>> commands;
        for (const std::string *room : rooms) {
            commands.push_back({"ZREMRANGEBYSCORE", ctx_.presence_key(*room), "-inf", now_ms});
            commands.push_back({"ZRANGE", ctx_.presence_key(*room), "0", last});
            commands.push_back({"ZCARD", ctx_.presence_key(*room)});
            if (ctx_.s.read_receipts)
                commands.push_back({"EVAL", kReceiptsSnapshotScript, "2", ctx_.reads_key(*room, false),
                                    ctx_.reads_key(*room, true), std::to_string(ctx_.s.receipts_snapshot_max)});
        }
        std::vector<plugin::RedisReply> replies;
        std::string err;
        if (!round_trip(slot, commands, replies, err)) {
            for (const std::string *room : rooms) {  // join snapshots are lost, as live events are while Redis is away
                for (SnapshotJob *job : by_room[*room])
                    if (job->msg) answer_error(*job, "unavailable", "the message store is unavailable");
            }
            continue;
        }
        size_t at = 0;
        const size_t per_room = ctx_.s.read_receipts ? 4 : 3;
        for (const std::string *room : rooms) {
            answer_snapshot(*room, by_room[*room], replies[at + 1].get(), replies[at + 2].get(),
                            ctx_.s.read_receipts ? replies[at + 3].get() : nullptr);
            at += per_room;
        }
    }
}

void ReadWorker::answer_snapshot(const std::string &room, const std::vector<SnapshotJob *> &list,
                                 const redisReply *members, const redisReply *total, const redisReply *readers) {
    std::vector<std::string_view> entries;
    if (members->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < members->elements; ++i) {
            if (members->element[i]->type == REDIS_REPLY_STRING) entries.push_back(text(members->element[i]));
        }
    }
    long long count = total->type == REDIS_REPLY_INTEGER ? total->integer : -1;
    // The room's newest readers ({ids, values, total}; anything else: none).
    std::vector<std::string_view> reader_ids, reader_values;
    long long reader_count = 0;
    if (readers && readers->type == REDIS_REPLY_ARRAY && readers->elements == 3 &&
        readers->element[0]->type == REDIS_REPLY_ARRAY && readers->element[1]->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < readers->element[0]->elements; ++i) reader_ids.push_back(text(readers->element[0]->element[i]));
        for (size_t i = 0; i < readers->element[1]->elements; ++i) reader_values.push_back(text(readers->element[1]->element[i]));
        if (readers->element[2]->type == REDIS_REPLY_INTEGER) reader_count = readers->element[2]->integer;
    } else if (readers && readers->type == REDIS_REPLY_ERROR) {
        ctx_.log(AURORA_LOG_WARN, "receipts snapshot: " + std::string(text(readers)));
    }
    std::string plain, plain_receipts;  // the same snapshots for every join in this room
    for (SnapshotJob *job : list) {
        if (job->kind == Kind::Receipts) {
            answer(*job, receipts_snapshot_json(room, reader_ids, reader_values, reader_count, job->ref_json));
            continue;
        }
        if (!job->ref_json.empty()) {
            answer(*job, presence_snapshot_json(room, entries, count, job->ref_json));
            continue;
        }
        if (plain.empty()) plain = presence_snapshot_json(room, entries, count, {});
        answer(*job, plain);
        if (job->msg || reader_ids.empty()) continue;
        // After a join: the readers too, when there are any (presence first: clients wait for it).
        if (plain_receipts.empty()) plain_receipts = receipts_snapshot_json(room, reader_ids, reader_values, reader_count, {});
        ctx_.host->send(ctx_.self, job->conn, plugin::str(plain_receipts));
    }
}

void ReadWorker::serve_resume(const ResumeJob &job) {
    ctx_.host->metric_add(ctx_.m.resumes, 1);
    StreamId last_seen = job.since;
    bool complete = true, reached = true;
    size_t sent = job.since < job.upto ? send_range(job, last_seen, complete, reached) : 0;
    release(job.conn, job.room, Kind::Resume);  // first: the client may ask again as soon as it has the answer
    if (!reached) {
        ctx_.host->send_error(ctx_.self, job.conn, "unavailable", "the message store is unavailable",
                              plugin::str(job.ref_json));
        return;
    }
    // Complete: it has every message of the room up to `upto` from us, and
    // every later one live.
    if (complete) last_seen = std::max(last_seen, job.upto);
    ctx_.host->metric_add(ctx_.m.resumed_messages, static_cast<double>(sent));
    std::string done = resumed_json(job.room, sent, complete, last_seen.str(), job.ref_json);
    ctx_.host->send(ctx_.self, job.conn, plugin::str(done));
}

// Sends the room's messages with since < id <= upto to the connection, in
// order, at most resume_max of them and resume_max_bytes, scanning at most
// resume_scan_max entries. `last_seen` is the last id sent or examined.
// `reached` is false if Redis could not be reached before anything was sent.
size_t ReadWorker::send_range(const ResumeJob &job, StreamId &last_seen, bool &complete, bool &reached) {
    std::string err;
    size_t sent = 0, scanned = 0, bytes = 0;
    const std::string end = job.upto.str();
    std::vector<plugin::RedisReply> replies;
    while (true) {
        if (!round_trip(ctx_.slot(job.room),
                        {{"XRANGE", ctx_.stream(job.room), "(" + last_seen.str(), end, "COUNT", std::to_string(kRangeChunk)}},
                        replies, err)) {
            reached = sent > 0;
            complete = false;
            return sent;
        }
        const redisReply *rep = replies[0].get();
        if (rep->type != REDIS_REPLY_ARRAY) {
            ctx_.log(AURORA_LOG_WARN, "resume: " + (rep->type == REDIS_REPLY_ERROR ? std::string(rep->str, rep->len)
                                                                                    : std::string("unexpected reply")));
            complete = false;
            return sent;
        }
        for (size_t i = 0; i < rep->elements; ++i) {
            const redisReply *e = rep->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements < 2) continue;
            std::string_view id = text(e->element[0]);
            const redisReply *fields = e->element[1];
            std::string_view kind = field(fields, "kind");  // a change to a message: replayed as its event
            const bool known = kind.empty() || kind == "edit" || kind == "delete" || kind == "reaction";
            if (known && field(fields, "roomId") == job.room) {  // another producer's kinds: skipped
                const bool is_emoji = kind == "reaction";
                std::string msg =
                    kind.empty() ? message_json(id, job.room, field(fields, "username"), field(fields, "userId"),
                                                field(fields, "text"), attachments_json(field(fields, "attachments")), {})
                                 : change_json(id, job.room, field(fields, "username"), field(fields, "userId"),
                                               Change{kind, field(fields, "target"),
                                                      field(fields, is_emoji ? "emoji" : "text"), field(fields, "op")});
                if (sent == ctx_.s.resume_max || bytes + msg.size() > ctx_.s.resume_max_bytes) {
                    complete = false;  // the rest is for history
                    return sent;
                }
                bytes += msg.size();
                ctx_.host->send(ctx_.self, job.conn, plugin::str(msg));
                ++sent;
            }
            if (auto sid = StreamId::parse(id)) last_seen = *sid;
            if (++scanned >= ctx_.s.resume_scan_max) {
                complete = false;
                return sent;
            }
        }
        if (rep->elements < kRangeChunk) return sent;
    }
}

}  // namespace aurora::chat
