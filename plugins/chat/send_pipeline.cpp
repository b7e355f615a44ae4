#include "send_pipeline.h"

#include <algorithm>

#include "chat_protocol.h"
#include "chat_scripts.h"
#include "json.h"
#include "redis_cluster.h"

namespace aurora::chat {

using plugin::reply_text;

namespace {

bool is_error(const redisReply *r) { return !r || r->type == REDIS_REPLY_ERROR; }

// A script that publishes, to a shard channel in cluster mode.
std::string publishing_script(const char *script, bool cluster) {
    std::string text = script;
    if (cluster) text.replace(text.find("'PUBLISH'"), 9, "'SPUBLISH'");
    return text;
}

}  // namespace

SendPipeline::SendPipeline(const ChatContext &ctx, ReadWorker &reads)
    : ctx_(ctx),
      reads_(reads),
      redis_(ctx, ctx.redis_url, std::chrono::milliseconds(ctx.s.redis_timeout_ms), kMaxPending, "sends"),
      send_script_(publishing_script(kSendScript, ctx.cluster())),
      change_script_(publishing_script(kChangeScript, ctx.cluster())),
      events_(std::chrono::milliseconds(ctx.s.presence_coalesce_ms)),
      dedup_window_arg_(std::to_string(ctx.s.dedup_window_s)),
      stream_maxlen_arg_(std::to_string(ctx.s.stream_maxlen)),
      state_ttl_arg_(std::to_string(ctx.s.message_state_ttl_s)),
      max_emojis_arg_(std::to_string(ctx.s.max_reaction_emojis)),
      max_reactions_arg_(std::to_string(ctx.s.max_reactions)),
      max_changes_arg_(std::to_string(ctx.s.max_changes)),
      receipts_ttl_arg_(std::to_string(ctx.s.message_state_ttl_s)),
      wait_replicas_arg_(std::to_string(ctx.s.wait_replicas)),
      wait_timeout_arg_(std::to_string(ctx.s.wait_timeout_ms)) {}

SendPipeline::~SendPipeline() {
    if (coalesce_timer_) ctx_.host->timer_stop(coalesce_timer_);
    if (refresh_timer_) ctx_.host->timer_stop(refresh_timer_);
    if (members_.empty()) return;
    // The loop has ended: one blocking round trip (per master), bounded by
    // the timeout.
    std::chrono::milliseconds timeout(ctx_.s.redis_timeout_ms);
    std::string err;
    if (ctx_.cluster()) {
        plugin::RedisCluster sync(ctx_.redis_url.nodes, ctx_.redis_url.password, timeout);
        for (const auto &[key, m] : members_)
            if (!sync.command(ctx_.slot(key.second), {"ZREM", ctx_.presence_key(key.second), m}, err)) break;
        return;
    }
    plugin::RedisConnection sync(ctx_.redis_url, timeout);
    if (!sync.ensure(err)) return;
    for (const auto &[key, m] : members_) sync.append({"ZREM", ctx_.presence_key(key.second), m});
    for (size_t i = sync.pending(); i > 0; --i) {
        if (!sync.read(err)) break;
    }
}

bool SendPipeline::start() {
    redis_.on_node_up([this](plugin::AsyncRedis &node) { load_scripts(node); });
    redis_.on_node_down([this](plugin::AsyncRedis &node) {
        if (!ctx_.cluster()) {  // the same SHA1 on every node: kept while another answers
            send_sha_.clear();
            read_sha_.clear();
            change_sha_.clear();
            receipts_sha_.clear();
        }
        ctx_.host->metric_set(ctx_.m.redis_up, 0);
        replicated(node, nullptr);  // held messages: their WAIT is gone with the connection
        waits_.erase(&node);
    });
    if (ctx_.s.wait_replicas > 0) redis_.before_write([this](plugin::AsyncRedis &node) { queue_wait(node); });
    const aurora_host_api *h = ctx_.host;
    uint64_t coalesce_every = static_cast<uint64_t>(std::clamp<int64_t>(ctx_.s.presence_coalesce_ms / 4, 10, 250));
    uint64_t refresh_every = static_cast<uint64_t>(ctx_.s.presence_refresh_s) * 1000;
    coalesce_timer_ = h->timer_start(ctx_.self, coalesce_every, coalesce_every, [](void *p) {
        auto *self = static_cast<SendPipeline *>(p);
        self->publish_presence();
        self->publish_receipts();
    }, this);
    refresh_timer_ = h->timer_start(ctx_.self, refresh_every, refresh_every,
                                    [](void *p) { static_cast<SendPipeline *>(p)->refresh_presence(); }, this);
    return coalesce_timer_ && refresh_timer_ && redis_.start();
}

void SendPipeline::load_scripts(plugin::AsyncRedis &node) {
    auto on_loaded = [this](std::string *into, const redisReply *r) {
        if (is_error(r)) {
            ctx_.log(AURORA_LOG_ERROR, "chat scripts not loaded: " + reply_text(r));
            return;
        }
        *into = reply_text(r);
        if (usable()) ctx_.host->metric_set(ctx_.m.redis_up, 1);
    };
    node.command({"SCRIPT", "LOAD", send_script_}, [on_loaded, this](const redisReply *r) { on_loaded(&send_sha_, r); });
    node.command({"SCRIPT", "LOAD", kReadScript}, [on_loaded, this](const redisReply *r) { on_loaded(&read_sha_, r); });
    node.command({"SCRIPT", "LOAD", change_script_},
                 [on_loaded, this](const redisReply *r) { on_loaded(&change_sha_, r); });
    if (ctx_.s.read_receipts)
        node.command({"SCRIPT", "LOAD", publishing_script(kReceiptsScript, ctx_.cluster())},
                     [this](const redisReply *r) {
                         if (!is_error(r)) receipts_sha_ = reply_text(r);
                     });
}

bool SendPipeline::command(uint16_t slot, const std::vector<std::string_view> &argv, plugin::AsyncRedis::Callback cb,
                           const plugin::Redirect *ask, plugin::AsyncRedis **via) {
    if (ask) {
        if (via) *via = &redis_.node_at(ask->to);
        return redis_.command_at(ask->to, true, argv, std::move(cb));
    }
    plugin::AsyncRedis *r = redis_.route(slot);
    if (via) *via = r;
    return r && r->command(argv, std::move(cb));
}

std::string SendPipeline::member(const SendJob &job) const {
    return presence_member_json(job.user_id, job.username, ctx_.replica + ":" + std::to_string(job.conn));
}

aurora_verdict SendPipeline::submit(SendJob job) {
    // Presence is bookkeeping first: the member map and the coalesced events
    // follow every join and leave, whether Redis is there or not (the
    // refresh puts members back once it is).
    if (job.kind == SendJob::Kind::PresenceJoin) {
        members_[{job.conn, job.room}] = member(job);
        if (ctx_.s.presence_events) events_.change(job.conn, job.room, true, job.user_id, job.username, Clock::now());
    } else if (job.kind == SendJob::Kind::PresenceLeave) {
        auto it = members_.find({job.conn, job.room});
        if (it == members_.end()) return AURORA_DROP;
        std::string m = std::move(it->second);
        members_.erase(it);
        if (ctx_.s.presence_events) events_.change(job.conn, job.room, false, job.user_id, job.username, Clock::now());
        if (usable(ctx_.slot(job.room)))
            redis_.command(ctx_.slot(job.room), {"ZREM", ctx_.presence_key(job.room), m}, [](const redisReply *) {});
        return AURORA_DROP;
    }
    bool has_msg = job.msg != nullptr;
    auto shared = std::make_shared<SendJob>(std::move(job));
    if (issue(shared)) return has_msg ? AURORA_PENDING : AURORA_DROP;
    if (shared->done) {  // answered from the loop, as every other outcome
        const std::string message = "message not sent: " + shared->failure;
        auto done = std::move(shared->done);
        auto later = std::make_unique<std::function<void()>>([done, message] { done(SendResult{"unavailable", message, {}, false}); });
        if (ctx_.host->call_on_service(ctx_.self, [](void *p) {
                std::unique_ptr<std::function<void()>> fn(static_cast<std::function<void()> *>(p));
                (*fn)();
            }, later.get()) == AURORA_OK)
            (void)later.release();
        else
            (*later)();  // the host is stopping: answered now (http_reply is any-thread)
        return AURORA_DROP;
    }
    if (!has_msg) return AURORA_DROP;
    const std::string message = shared->kind == SendJob::Kind::Message ? "message not sent: " + shared->failure
                                                                       : shared->failure;
    ctx_.host->msg_reply_error(shared->msg, "unavailable", message.c_str());
    shared->msg = nullptr;
    return AURORA_REPLY;
}

// One lookup of a message's uploads: the GETs answer in any order (they
// may go to several masters); the last one to answer sends the message on.
struct SendPipeline::Lookup {
    std::shared_ptr<SendJob> job;
    std::vector<std::string> ids, found;  // found[i]: ids[i]'s description ("": none)
    size_t left = 0;
    bool failed = false;  // Redis did not answer one of them
};

aurora_verdict SendPipeline::submit_attached(SendJob job, std::vector<std::string> upload_ids) {
    auto l = std::make_shared<Lookup>();
    l->job = std::make_shared<SendJob>(std::move(job));
    l->ids = std::move(upload_ids);
    l->found.resize(l->ids.size());
    std::vector<uint16_t> slots;
    for (const std::string &id : l->ids) {
        slots.push_back(ctx_.cluster() ? plugin::key_slot("chat:upload:" + id) : 0);
        if (!usable(slots.back())) {
            ctx_.host->metric_add(ctx_.m.send_errors, 1);
            ctx_.host->msg_reply_error(l->job->msg, "unavailable", "message not sent: the message store is unavailable");
            return AURORA_REPLY;
        }
    }
    l->left = l->ids.size();
    for (size_t i = 0; i < l->ids.size(); ++i) {
        const std::string key = "chat:upload:" + l->ids[i];
        auto got = [this, l, i](const redisReply *r) {
            if (!r || r->type == REDIS_REPLY_ERROR) l->failed = true;
            else if (r->type == REDIS_REPLY_STRING) l->found[i].assign(r->str, r->len);
            if (--l->left == 0) looked_up(l);
        };
        if (!command(slots[i], {"GET", key}, got)) {
            l->failed = true;
            if (--l->left == 0) {
                // None is waiting for an answer: answered from the hook.
                ctx_.host->metric_add(ctx_.m.send_errors, 1);
                ctx_.host->msg_reply_error(l->job->msg, "unavailable", "message not sent: the message store is too far behind");
                return AURORA_REPLY;
            }
        }
    }
    return AURORA_PENDING;
}

void SendPipeline::looked_up(const std::shared_ptr<Lookup> &l) {
    SendJob &job = *l->job;
    aurora_msg *msg = job.msg;
    auto refuse = [&](const char *code, const std::string &why) {
        if (std::string_view(code) == "unavailable") ctx_.host->metric_add(ctx_.m.send_errors, 1);
        ctx_.host->msg_reply_error(msg, code, why.c_str());
        ctx_.host->msg_resume(msg, AURORA_REPLY);
    };
    if (l->failed) return refuse("unavailable", "message not sent: the message store did not answer; send it again");
    plugin::Json list(cJSON_CreateArray());
    for (size_t i = 0; i < l->ids.size(); ++i) {
        plugin::Json d = l->found[i].empty() ? plugin::Json() : plugin::parse_json(l->found[i]);
        const char *owner = d ? plugin::get_string(d.get(), "userId") : nullptr;
        const char *type = d ? plugin::get_string(d.get(), "fileType") : nullptr;
        const char *name = d ? plugin::get_string(d.get(), "filename") : nullptr;
        const cJSON *size = d ? cJSON_GetObjectItemCaseSensitive(d.get(), "size") : nullptr;
        if (!owner || !type || !name || !cJSON_IsNumber(size))
            return refuse("bad_attachment", "attachment " + l->ids[i] + " is not an upload, or too old to attach");
        if (owner != job.user_id) return refuse("bad_attachment", "attachment " + l->ids[i] + " is not your upload");
        cJSON *a = cJSON_CreateObject();
        cJSON_AddItemToArray(list.get(), a);
        cJSON_AddStringToObject(a, "id", l->ids[i].c_str());
        cJSON_AddStringToObject(a, "url", (std::string(kUploadsPath) + l->ids[i]).c_str());
        cJSON_AddStringToObject(a, "fileType", type);
        cJSON_AddNumberToObject(a, "size", size->valuedouble);
        cJSON_AddStringToObject(a, "filename", name);
    }
    job.attachments = plugin::to_string(list.get());
    if (submit(std::move(job)) == AURORA_REPLY) ctx_.host->msg_resume(msg, AURORA_REPLY);
}

// Cluster mode only: single mode has one connection, and no key is built
// or hashed for it on the hot path.
uint16_t SendPipeline::slot_of(const SendJob &job) const {
    if (!ctx_.cluster()) return 0;
    return job.kind == SendJob::Kind::Read ? plugin::key_slot("chat:read:" + job.user_id) : ctx_.slot(job.room);
}

// The job's one command, its reply handled by complete(). False when it
// cannot be sent (job->failure says why; the caller answers).
bool SendPipeline::issue(std::shared_ptr<SendJob> job, const plugin::Redirect *ask) {
    const uint16_t slot = slot_of(*job);
    if (!usable(slot)) {
        ctx_.host->metric_set(ctx_.m.redis_up, 0);
        job->failure = "the message store is unavailable";
        if (job->kind == SendJob::Kind::Message) ctx_.host->metric_add(ctx_.m.send_errors, 1);
        return false;
    }
    auto done = [this, job](const redisReply *r) { complete(*job, r); };
    bool queued = false;
    switch (job->kind) {
    case SendJob::Kind::Message: {
        EnvelopeParts env =
            message_envelope(job->room, job->username, job->user_id, job->text, job->attachments, job->ref_json);
        std::string channel = ctx_.channel(job->room), shard_stream, dedup_key;
        if (ctx_.cluster()) shard_stream = ctx_.stream(job->room);  // single mode: the setting itself, no copy
        std::vector<std::string_view> argv{"EVALSHA", send_sha_, job->ref_value.empty() ? "1" : "2",
                                           ctx_.cluster() ? std::string_view(shard_stream) : ctx_.s.stream};
        if (!job->ref_value.empty()) {
            dedup_key = job->dedup_key.empty() ? ctx_.ref_key(job->room, job->user_id, job->ref_value) : job->dedup_key;
            argv.push_back(dedup_key);
        }
        for (std::string_view a : {std::string_view(channel), std::string_view(job->room), std::string_view(job->user_id),
                                   std::string_view(job->text), std::string_view(job->username),
                                   std::string_view(job->ref_value), std::string_view(env.prefix),
                                   std::string_view(env.middle), std::string_view(env.suffix),
                                   std::string_view(dedup_window_arg_), std::string_view(stream_maxlen_arg_)})
            argv.push_back(a);
        if (!job->attachments.empty()) argv.push_back(job->attachments);  // the script's ARGV[12], only when there are some
        queued = command(slot, argv, done, ask, &job->node);
        if (queued && ctx_.s.wait_replicas > 0) waits_[job->node].due = true;
        break;
    }
    case SendJob::Kind::Change: queued = issue_change(job, slot, done, ask); break;
    case SendJob::Kind::Typing: {
        std::string payload = "{\"type\":\"typing\",\"room\":" + quoted(job->room) + ",\"user\":" +
                              quoted(job->username) + ",\"userId\":" + quoted(job->user_id) + "}";
        queued = command(slot, {ctx_.publish(), ctx_.channel(job->room), payload}, done, ask);
        break;
    }
    case SendJob::Kind::Read:
        queued = command(slot, {"EVALSHA", read_sha_, "1", "chat:read:" + job->user_id, job->room, job->id}, done, ask);
        break;
    case SendJob::Kind::PresenceJoin: {
        const std::string expiry =
            std::to_string(ctx_.host->now_wall_ms() + static_cast<uint64_t>(ctx_.s.presence_ttl_s) * 1000);
        queued = command(slot, {"ZADD", ctx_.presence_key(job->room), expiry, member(*job)}, done, ask);
        break;
    }
    case SendJob::Kind::PresenceLeave: queued = true; break;  // submit() did it
    }
    if (queued) return true;
    job->failure = "the message store is too far behind";
    if (job->kind == SendJob::Kind::Message) ctx_.host->metric_add(ctx_.m.send_errors, 1);
    return false;
}

void SendPipeline::finish(aurora_msg *msg, const std::string &reply) {
    if (!msg) return;
    if (reply.empty()) {
        ctx_.host->msg_resume(msg, AURORA_DROP);
        return;
    }
    ctx_.host->msg_set_reply(msg, plugin::str(reply));
    ctx_.host->msg_resume(msg, AURORA_REPLY);
}

void SendPipeline::fail(SendJob &job, const char *code, const std::string &why) {
    if (job.kind == SendJob::Kind::Message) ctx_.host->metric_add(ctx_.m.send_errors, 1);
    if (job.done) {
        auto done = std::move(job.done);
        job.done = nullptr;
        done(SendResult{code, "message not sent: " + why, {}, false});
        return;
    }
    if (job.msg) {
        const std::string message = job.kind == SendJob::Kind::Message ? "message not sent: " + why : why;
        ctx_.host->msg_reply_error(job.msg, code, message.c_str());
        ctx_.host->msg_resume(job.msg, AURORA_REPLY);
        job.msg = nullptr;
    }
}

void SendPipeline::complete(SendJob &job, const redisReply *r) {
    if (!r)  // written, and no answer: Redis may still run it (a paused Redis wakes up)
        return fail(job, "unavailable",
                    "the message store did not answer in time; it may have been stored: send it again with the same ref");
    if (r->type == REDIS_REPLY_ERROR && !job.retried) {
        std::string_view e(r->str, r->len);
        if (e.starts_with("NOSCRIPT")) {
            // Redis restarted or flushed its scripts: load them and try once
            // more (behind the SCRIPT LOADs on the same connection).
            job.retried = true;
            const uint16_t slot = slot_of(job);
            auto again = std::make_shared<SendJob>(std::move(job));
            job.msg = nullptr;
            load_scripts_after_noscript(slot);
            auto resend = [this, again](const redisReply *) {
                if (!issue(again)) fail(*again, "unavailable", again->failure);
            };
            if (!redis_.command(slot, {"PING"}, resend)) fail(*again, "unavailable", "scripts could not be loaded");
            return;
        }
        // Cluster mode: the slot moved (the map is corrected: send it again
        // there) or is being moved (ASK: to the importing node, this once).
        if (std::optional<plugin::Redirect> to = plugin::parse_redirect(e)) {
            job.retried = true;
            auto again = std::make_shared<SendJob>(std::move(job));
            job.msg = nullptr;
            if (!issue(again, to->kind == plugin::Redirect::Kind::Ask ? &*to : nullptr))
                fail(*again, "unavailable", "the room's shard is moving; send it again with the same ref");
            return;
        }
    }
    if (r->type == REDIS_REPLY_ERROR) {
        // Transient: a failover (READONLY, CLUSTERDOWN, MASTERDOWN), a slot
        // being moved (TRYAGAIN: the script's keys are split between two
        // masters; MOVED or ASK again after the one retry), a restart.
        std::string_view e(r->str, r->len);
        for (std::string_view t : {"READONLY", "CLUSTERDOWN", "MASTERDOWN", "TRYAGAIN", "MOVED", "ASK", "LOADING"})
            if (e.starts_with(t))
                return fail(job, "unavailable",
                            "the message store is failing over or moving this room; send it again with the same ref");
    }
    switch (job.kind) {
    case SendJob::Kind::Message: {
        if (is_error(r) || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            ctx_.log(AURORA_LOG_ERROR, "send script failed: " + reply_text(r));
            return fail(job, "internal", "the message could not be stored");
        }
        bool fresh = r->element[0]->integer == 1;
        std::string id = reply_text(r->element[1]);
        ctx_.host->metric_add(fresh ? ctx_.m.sent : ctx_.m.duplicates, 1);
        if (fresh && on_stored) on_stored(job, id);
        std::chrono::duration<double> took = Clock::now() - job.queued;
        ctx_.host->metric_observe(ctx_.m.send_seconds, took.count());
        if (job.done) {
            SendResult result{{}, {}, id, !fresh};
            auto done = std::move(job.done);
            job.done = nullptr;
            if (ctx_.s.wait_replicas > 0 && job.node) {
                waits_[job.node].held.push_back(Held{nullptr, {}, std::move(done), std::move(result)});
                queue_wait(*job.node);
                return;
            }
            done(result);
            return;
        }
        std::string reply;  // empty: the seed's plain message, no ack (the broadcast is the answer)
        if (!job.ref_json.empty()) {
            std::string extra = "\"id\":" + quoted(id) + ",\"room\":" + quoted(job.room);
            if (!fresh) extra += ",\"duplicate\":true";
            reply = ack_json(job.ref_json, extra);
        }
        if (ctx_.s.wait_replicas > 0 && job.node) {  // answered when the WAIT after it on that master returns
            waits_[job.node].held.push_back(Held{job.msg, std::move(reply), nullptr, {}});
            job.msg = nullptr;
            queue_wait(*job.node);  // a WAIT refused for a full queue: this reply made room
            return;
        }
        finish(job.msg, reply);
        job.msg = nullptr;
        return;
    }
    case SendJob::Kind::Change: return complete_change(job, r);
    case SendJob::Kind::Read: {
        if (is_error(r)) return fail(job, "internal", "read marker not stored: " + reply_text(r));
        const std::string marker = reply_text(r);
        // The marker is this one: others see it (coalesced per room, publish_receipts()).
        if (ctx_.s.read_receipts && marker == job.id) receipts_[job.room][job.user_id] = {job.username, job.id};
        finish(job.msg, ack_json(job.ref_json, "\"room\":" + quoted(job.room) + ",\"read\":" + quoted(marker)));
        job.msg = nullptr;
        return;
    }
    case SendJob::Kind::PresenceJoin:
        // Now that it is in the set; unless it left meanwhile.
        if (!is_error(r) && members_.count({job.conn, job.room})) reads_.join_snapshot(job.conn, job.room);
        return;
    case SendJob::Kind::Typing:
    case SendJob::Kind::PresenceLeave: return;
    }
}

void SendPipeline::load_scripts_after_noscript(uint16_t slot) {
    auto loaded = [this](std::string *into, const redisReply *lr) {
        if (!is_error(lr)) *into = reply_text(lr);
    };
    redis_.command(slot, {"SCRIPT", "LOAD", send_script_}, [this, loaded](const redisReply *lr) { loaded(&send_sha_, lr); });
    redis_.command(slot, {"SCRIPT", "LOAD", kReadScript}, [this, loaded](const redisReply *lr) { loaded(&read_sha_, lr); });
    redis_.command(slot, {"SCRIPT", "LOAD", change_script_},
                   [this, loaded](const redisReply *lr) { loaded(&change_sha_, lr); });
    if (ctx_.s.read_receipts)
        redis_.command(slot, {"SCRIPT", "LOAD", publishing_script(kReceiptsScript, ctx_.cluster())},
                       [this, loaded](const redisReply *lr) { loaded(&receipts_sha_, lr); });
}

// An edit, delete or reaction: one EVALSHA of kChangeScript.
bool SendPipeline::issue_change(const std::shared_ptr<SendJob> &job, uint16_t slot, plugin::AsyncRedis::Callback done,
                                const plugin::Redirect *ask) {
    const Change change{job->change, job->target, job->change == "reaction" ? job->emoji : job->text, job->op};
    EnvelopeParts env = change_envelope(job->room, job->username, job->user_id, change, job->ref_json);
    const std::string channel = ctx_.channel(job->room), stream = ctx_.stream(job->room),
                      state = ctx_.message_state_key(job->room, job->target);
    std::string dedup_key;
    std::vector<std::string_view> argv{"EVALSHA", change_sha_, job->ref_value.empty() ? "2" : "3", stream, state};
    if (!job->ref_value.empty()) {
        dedup_key = ctx_.change_ref_key(job->room, job->user_id, job->ref_value);
        argv.push_back(dedup_key);
    }
    for (std::string_view a :
         {std::string_view(channel), std::string_view(job->room), std::string_view(job->user_id),
          std::string_view(job->username), std::string_view(job->change), std::string_view(job->target), change.value,
          std::string_view(job->op), std::string_view(job->moderator ? "1" : "0"), std::string_view(job->ref_value),
          std::string_view(env.prefix), std::string_view(env.middle), std::string_view(env.suffix),
          std::string_view(dedup_window_arg_), std::string_view(stream_maxlen_arg_), std::string_view(state_ttl_arg_),
          std::string_view(max_emojis_arg_), std::string_view(max_reactions_arg_), std::string_view(max_changes_arg_)})
        argv.push_back(a);
    return command(slot, argv, std::move(done), ask);
}

// The change script's answer: {1, id} stored, {0, id} a ref seen before,
// {2, code} refused, {3, ""} a reaction already as asked.
void SendPipeline::complete_change(SendJob &job, const redisReply *r) {
    if (is_error(r) || r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_INTEGER) {
        ctx_.log(AURORA_LOG_ERROR, "change script failed: " + reply_text(r));
        return fail(job, "internal", "the change could not be stored");
    }
    const long long status = r->element[0]->integer;
    const std::string value = reply_text(r->element[1]);
    if (status == 2) {
        const std::string text =
            value == "not_found"          ? "no message " + job.target + " in '" + job.room + "' that can be changed"
            : value == "too_old"          ? "this message is too old to change"
            : value == "not_author"       ? "only its author may " + job.change + " this message"
            : value == "deleted"          ? "this message was deleted"
            : value == "too_many_changes" ? "this message has been changed too many times"
                                          : "this message has too many reactions";
        if (job.msg) {
            ctx_.host->msg_reply_error(job.msg, value.c_str(), text.c_str());
            ctx_.host->msg_resume(job.msg, AURORA_REPLY);
            job.msg = nullptr;
        }
        return;
    }
    if (status == 1) ctx_.host->metric_add(ctx_.m.changes, 1);
    aurora_msg *msg = job.msg;
    job.msg = nullptr;
    if (job.ref_json.empty()) return finish(msg, {});  // the event is the answer
    std::string extra = "\"room\":" + quoted(job.room) + ",\"target\":" + quoted(job.target);
    if (status == 3) extra += ",\"unchanged\":true";
    else extra = "\"id\":" + quoted(value) + "," + extra + (status == 0 ? ",\"duplicate\":true" : "");
    finish(msg, ack_json(job.ref_json, extra));
}

// Called before each write: one WAIT after the messages of the batch, and
// one at a time. Redis holds every command behind a WAIT until it returns,
// so the messages sent meanwhile share the next one instead of each batch
// waiting its own turn (a lagging replica costs wait_timeout_ms per WAIT).
void SendPipeline::queue_wait(plugin::AsyncRedis &node) {
    auto it = waits_.find(&node);
    if (it == waits_.end() || !it->second.due || it->second.in_flight) return;
    if (node.command({"WAIT", wait_replicas_arg_, wait_timeout_arg_},
                     [this, &node](const redisReply *r) { replicated(node, r); })) {
        it->second.due = false;
        it->second.in_flight = true;
    }  // else (full): the next write tries again
}

void SendPipeline::replicated(plugin::AsyncRedis &node, const redisReply *r) {
    auto it = waits_.find(&node);
    if (it == waits_.end()) return;
    it->second.in_flight = false;
    std::vector<Held> held = std::move(it->second.held);
    it->second.held.clear();
    const bool ok = r && r->type == REDIS_REPLY_INTEGER && r->integer >= ctx_.s.wait_replicas;
    for (Held &h : held) {
        if (ok) {
            if (h.done)
                h.done(h.result);
            else
                finish(h.msg, h.reply);
            continue;
        }
        ctx_.host->metric_add(ctx_.m.unreplicated, 1);
        std::string why = !r ? "the message store did not confirm replication in time"
                          : r->type == REDIS_REPLY_INTEGER
                              ? std::to_string(r->integer) + " of " + std::to_string(ctx_.s.wait_replicas) +
                                    " replicas confirmed it within " + std::to_string(ctx_.s.wait_timeout_ms) + " ms"
                              : "WAIT failed: " + reply_text(r);
        SendJob job(SendJob::Kind::Message);  // the failure path only: fail() answers it
        job.msg = h.msg;
        job.done = std::move(h.done);
        fail(job, "unavailable", why + "; it may have been stored: send it again with the same ref");
    }
    if (r) queue_wait(node);  // the messages sent while it waited
}

// Each room's read positions, one event per receipts_interval_ms at most:
// a busy room gets one event a second listing who moved, not one per read.
void SendPipeline::publish_receipts() {
    if (receipts_.empty() && receipts_sent_.empty()) return;
    const Clock::time_point now = Clock::now();
    const auto interval = std::chrono::milliseconds(ctx_.s.receipts_interval_ms);
    std::erase_if(receipts_sent_, [&](const auto &e) { return now - e.second > 10 * interval && !receipts_.count(e.first); });
    if (receipts_sha_.empty()) {  // kept until the script is loaded (again)
        if (ctx_.s.read_receipts && !receipts_.empty() && !reloading_receipts_ && redis_.all_up()) {
            reloading_receipts_ = true;
            redis_.command(ctx_.slot(receipts_.begin()->first),
                           {"SCRIPT", "LOAD", publishing_script(kReceiptsScript, ctx_.cluster())},
                           [this](const redisReply *r) {
                               reloading_receipts_ = false;
                               if (!is_error(r)) receipts_sha_ = reply_text(r);
                           });
        }
        return;
    }
    for (auto it = receipts_.begin(); it != receipts_.end();) {
        const std::string &room = it->first;
        auto sent = receipts_sent_.find(room);
        if (sent != receipts_sent_.end() && now - sent->second < interval) {
            ++it;
            continue;
        }
        if (!usable(ctx_.slot(room))) {  // kept for when this room's master is back
            ++it;
            continue;
        }
        const std::string channel = ctx_.channel(room), head = receipts_head(room), reads = ctx_.reads_key(room, false),
                          ids = ctx_.reads_key(room, true);
        std::vector<std::string> owned;  // per reader: ms, JSON
        owned.reserve(it->second.size() * 2);
        for (const auto &[user, entry] : it->second) {
            owned.push_back(entry.second.substr(0, entry.second.find('-')));
            owned.push_back(receipt_json(user, entry.first, entry.second));
        }
        std::vector<std::string_view> argv{"EVALSHA", receipts_sha_, "2", reads, ids, channel, head, receipts_ttl_arg_};
        size_t k = 0;
        for (const auto &[user, entry] : it->second) {
            for (std::string_view a : {std::string_view(user), std::string_view(entry.second), std::string_view(owned[k]),
                                       std::string_view(entry.first), std::string_view(owned[k + 1])})
                argv.push_back(a);
            k += 2;
        }
        redis_.command(ctx_.slot(room), argv, [this](const redisReply *rep) {
            if (rep && rep->type == REDIS_REPLY_INTEGER && rep->integer > 0) ctx_.host->metric_add(ctx_.m.receipt_events, 1);
            // Lost, as live events are when Redis fails; NOSCRIPT: loaded again for the next ones.
            if (rep && rep->type == REDIS_REPLY_ERROR && std::string_view(rep->str, rep->len).starts_with("NOSCRIPT"))
                receipts_sha_.clear();
        });
        receipts_sent_[room] = now;
        it = receipts_.erase(it);
    }
}

void SendPipeline::publish_presence() {
    uint64_t cancelled = events_.cancelled();
    std::vector<PresenceCoalescer::Event> events = events_.due(Clock::now());
    ctx_.host->metric_add(ctx_.m.presence_coalesced, static_cast<double>(events_.cancelled() - cancelled));
    if (events.empty()) return;
    for (const auto &e : events)  // lost, like any live event while Redis is away; snapshots tell the truth
        redis_.command(ctx_.slot(e.room), {ctx_.publish(), ctx_.channel(e.room), e.json}, [](const redisReply *) {});
    ctx_.host->metric_add(ctx_.m.presence_events, static_cast<double>(events.size()));
}

void SendPipeline::refresh_presence() {
    if (members_.empty()) return;
    std::string expiry = std::to_string(ctx_.host->now_wall_ms() + static_cast<uint64_t>(ctx_.s.presence_ttl_s) * 1000);
    for (const auto &[key, m] : members_)  // a master that is down misses this refresh; the next one puts it back
        redis_.command(ctx_.slot(key.second), {"ZADD", ctx_.presence_key(key.second), expiry, m},
                       [](const redisReply *) {});
}

}  // namespace aurora::chat
