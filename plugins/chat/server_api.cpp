#include "server_api.h"

#include <strings.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <vector>

#include "chat_protocol.h"
#include "server_requests.h"
#include "openapi_text.h"  // kOpenApiYaml: docs/openapi.yaml, generated at build time

namespace aurora::chat {

namespace {

constexpr const char *kControlChannel = plugin::Moderation::kControlChannel;
constexpr const char *kBansKey = plugin::Moderation::kBansKey;
constexpr const char *kReplicasKey = "chat:replicas";

std::string error_json(std::string_view code, std::string_view text) {
    return "{\"error\":" + quoted(text) + ",\"code\":" + quoted(code) + "}";
}

uint16_t status_of(std::string_view code) {
    if (code == "unauthorized") return 401;
    if (code == "forbidden") return 403;
    if (code == "not_found") return 404;
    if (code == "method_not_allowed") return 405;
    if (code == "rate_limited") return 429;
    if (code == "unavailable") return 503;
    if (code == "internal") return 500;
    return 400;
}

// 503 with Retry-After: Redis is away or did not answer in time.
void unavailable(const ChatContext *ctx, aurora_http_req *req, std::string_view text) {
    ctx->host->http_reply(req, 503, nullptr, plugin::str("Retry-After: 1\r\n"), plugin::str(error_json("unavailable", text)));
}

// A route of the API: method, path below the base (a trailing '/' takes
// one more segment), the scope it needs.
enum class Op { Publish, Broadcast, Disconnect, Ban, Unban, Presence, User, Info };
struct Route {
    const char *method;
    std::string_view path;
    Op op;
    uint8_t scope;
};
constexpr Route kRoutes[] = {
    {"POST", "publish", Op::Publish, kScopePublish},      {"POST", "broadcast", Op::Broadcast, kScopePublish},
    {"POST", "disconnect", Op::Disconnect, kScopeModerate}, {"POST", "ban", Op::Ban, kScopeModerate},
    {"POST", "unban", Op::Unban, kScopeModerate},         {"GET", "info", Op::Info, kScopeRead},
    {"GET", "users/", Op::User, kScopeRead},              {"GET", "rooms/", Op::Presence, kScopeRead},
};

}  // namespace

// One request, from the handler to its reply (exactly once).
struct ServerApi::Call {
    const ChatContext &ctx;
    aurora_http_req *req;
    ServerKey &key;
    plugin::Json body;  // POST: the object
    bool &answered;     // the request is answered, or handed to what will answer it

    void reply(uint16_t status, const std::string &json, std::string_view headers = {}) {
        if (answered) return;
        answered = true;
        ctx.host->http_reply(req, status, nullptr, plugin::str(headers), plugin::str(json));
    }
    void error(std::string_view code, std::string_view text, std::string_view headers = {}) {
        reply(status_of(code), error_json(code, text), headers);
    }
};

ServerApi::ServerApi(const ChatContext &ctx, SendPipeline &sender, ServerKeys keys)
    : ctx_(ctx),
      sender_(sender),
      keys_(std::move(keys)),
      cmd_(ctx, ctx.redis_url, std::chrono::milliseconds(ctx.s.redis_timeout_ms), kMaxPending, "server-api"),
      moderation_(ctx, ctx.redis_url, std::chrono::milliseconds(ctx.s.redis_timeout_ms),
                  plugin::Moderation::kControlChannel) {}

ServerApi::~ServerApi() {
    if (refresh_timer_) ctx_.host->timer_stop(refresh_timer_);
    // The loop has ended: this replica leaves chat:replicas at once rather
    // than after presence_ttl_s (one blocking round trip, bounded).
    plugin::RedisConnection sync(ctx_.redis_url, std::chrono::milliseconds(ctx_.s.redis_timeout_ms));
    std::string err;
    if (sync.ensure(err)) {
        sync.append({"HDEL", kReplicasKey, ctx_.replica});
        (void)sync.read(err);
    }
}

bool ServerApi::start() {
    const aurora_host_api *h = ctx_.host;
    const std::string &base = ctx_.s.server_api_path;
    for (const char *method : {"GET", "POST"}) {
        if (h->http_route(ctx_.self, method, base.c_str(), 1, on_http, this) != AURORA_OK) {
            ctx_.log(AURORA_LOG_ERROR, "server_api: cannot route %s %s*", method, base.c_str());
            return false;
        }
    }
    if (h->http_route(ctx_.self, "GET", "/api/openapi.yaml", 0, on_openapi, this) != AURORA_OK) {
        ctx_.log(AURORA_LOG_ERROR, "server_api: cannot route GET /api/openapi.yaml");
        return false;
    }
    moderation_.on_ban([this](const std::string &user, const std::string &reason) {
        close_user(user, kCloseBanned, reason.empty() ? "banned" : "banned: " + reason);
    });
    moderation_.on_disconnect([this](const std::string &user, const std::string &reason) {
        close_user(user, kCloseDisconnected, reason.empty() ? "disconnected by the server" : reason);
    });
    cmd_.on_up([this] { refresh(); });
    uint64_t every = static_cast<uint64_t>(ctx_.s.presence_refresh_s) * 1000;
    refresh_timer_ = h->timer_start(ctx_.self, every, every, [](void *p) { static_cast<ServerApi *>(p)->refresh(); }, this);
    if (!refresh_timer_ || !cmd_.start() || !moderation_.start()) {
        ctx_.log(AURORA_LOG_ERROR, "server_api: cannot start its Redis connections");
        return false;
    }
    ctx_.log(AURORA_LOG_INFO, "server API on %s* with %zu key(s)", base.c_str(), keys_.size());
    return true;
}

// ---- connections ----

// Asked for every frame: nothing but a branch while nobody is banned.
bool ServerApi::banned(const std::string &user_id) const {
    return moderation_.any() && moderation_.banned(user_id, ctx_.host->now_wall_ms());
}

// Anonymous connections count, but have no online state: their ids
// (anon-...) cannot be asked for, nor banned.
void ServerApi::connected(aurora_conn_id conn, const std::string &user_id) {
    ++local_connections_;
    if (user_id.starts_with("anon-")) return;
    conns_[user_id].insert(conn);
    if (!cmd_.up()) return;  // the next refresh writes it
    const std::string key = online_key(user_id);
    const std::string expiry =
        std::to_string(ctx_.host->now_wall_ms() + static_cast<uint64_t>(ctx_.s.presence_ttl_s) * 1000);
    cmd_.command({"ZADD", key, expiry, online_member(conn)}, [](const redisReply *) {});
    cmd_.command({"PEXPIRE", key, std::to_string(ctx_.s.presence_ttl_s * 1000)}, [](const redisReply *) {});
}

void ServerApi::disconnected(aurora_conn_id conn, const std::string &user_id) {
    if (user_id.starts_with("anon-")) {
        --local_connections_;
        return;
    }
    auto it = conns_.find(user_id);
    if (it == conns_.end() || !it->second.erase(conn)) return;  // refused at connect: never counted
    if (it->second.empty()) conns_.erase(it);
    --local_connections_;
    if (cmd_.up()) cmd_.command({"ZREM", online_key(user_id), online_member(conn)}, [](const redisReply *) {});
}

void ServerApi::close_user(const std::string &user_id, uint16_t code, const std::string &reason) {
    auto it = conns_.find(user_id);
    if (it == conns_.end()) return;
    const char *code_name = code == kCloseBanned ? "banned" : "disconnected";
    const std::string cut = close_reason(reason);
    for (aurora_conn_id conn : it->second) {
        ctx_.host->send_error(ctx_.self, conn, code_name, reason.c_str(), aurora_str{});
        ctx_.host->close(ctx_.self, conn, code, plugin::str(cut));
    }
}

// Every presence_refresh_s: this replica's line in chat:replicas first,
// then one ZADD (every connection) and one PEXPIRE per user, with the
// expiries presence has. Two commands per user: kMaxPending bounds a
// replica to 32,768 signed-in users refreshed per tick (docs/server-api.md).
void ServerApi::refresh() {
    if (!cmd_.up()) return;
    const uint64_t now = ctx_.host->now_wall_ms();
    const std::string line = "{\"connections\":" + std::to_string(local_connections_) +
                             ",\"seen_ms\":" + std::to_string(now) + "}";
    cmd_.command({"HSET", kReplicasKey, ctx_.replica, line}, [](const redisReply *) {});
    const std::string expiry = std::to_string(now + static_cast<uint64_t>(ctx_.s.presence_ttl_s) * 1000);
    const std::string ttl_ms = std::to_string(ctx_.s.presence_ttl_s * 1000);
    std::vector<std::string> members;
    std::vector<std::string_view> argv;
    for (const auto &[user, set] : conns_) {
        const std::string key = online_key(user);
        members.clear();
        for (aurora_conn_id conn : set) members.push_back(online_member(conn));
        argv = {"ZADD", key};
        for (const std::string &m : members) {
            argv.push_back(expiry);
            argv.push_back(m);
        }
        if (!cmd_.command(argv, [](const redisReply *) {})) break;  // full: the next tick writes them
        cmd_.command({"PEXPIRE", key, ttl_ms}, [](const redisReply *) {});
    }
}

// ---- HTTP ----

void ServerApi::on_openapi(void *self, aurora_http_req *req) {
    auto *api = static_cast<ServerApi *>(self);
    api->ctx_.host->http_reply(req, 200, "application/yaml; charset=utf-8", plugin::str("Cache-Control: no-cache\r\n"),
                               plugin::str(kOpenApiYaml));
}

void ServerApi::on_http(void *self, aurora_http_req *req) {
    auto *api = static_cast<ServerApi *>(self);
    bool answered = false;
    try {
        api->handle(req, answered);
    } catch (const std::exception &e) {  // nothing escapes a handler; the request is answered once
        api->ctx_.log(AURORA_LOG_ERROR, std::string("server_api: ") + e.what());
        if (!answered)
            api->ctx_.host->http_reply(req, 500, nullptr, aurora_str{}, plugin::str(error_json("internal", "internal error")));
    }
}

void ServerApi::handle(aurora_http_req *req, bool &answered) {
    const aurora_host_api *h = ctx_.host;
    auto fail = [&](std::string_view code, std::string_view text, std::string_view headers = {}) {
        answered = true;
        h->http_reply(req, status_of(code), nullptr, plugin::str(headers), plugin::str(error_json(code, text)));
    };
    // The key first: without one, nothing about the API (not even which
    // paths exist) is told.
    std::string_view presented;
    std::string_view auth = plugin::view(h->http_header(req, "authorization"));
    if (auth.size() > 7 && strncasecmp(auth.data(), "bearer ", 7) == 0) presented = auth.substr(7);
    ServerKey *key = presented.empty() ? nullptr : keys_.find(presented);
    if (!key)
        return fail("unauthorized", "a valid API key is needed (Authorization: Bearer <key>)",
                    "WWW-Authenticate: Bearer realm=\"aurora-server-api\"\r\n");
    double retry_after = 0;
    if (!ServerKeys::take(*key, h->now_monotonic_ns(), retry_after)) {
        const std::string header = "Retry-After: " + std::to_string(static_cast<long long>(std::ceil(retry_after))) + "\r\n";
        return fail("rate_limited", "this key's rate is exceeded: try again later", header);
    }

    std::string_view path = plugin::view(h->http_path(req));
    std::string_view method = plugin::view(h->http_method(req));
    path.remove_prefix(std::min(path.size(), ctx_.s.server_api_path.size()));
    const Route *match = nullptr;
    bool other_method = false;
    std::string rest;  // the segment after "users/" or "rooms/"
    for (const Route &r : kRoutes) {
        bool hit = r.path.ends_with('/') ? path.starts_with(r.path) && path.size() > r.path.size() : path == r.path;
        if (!hit) continue;
        if (method != r.method && !(method == "HEAD" && std::string_view(r.method) == "GET")) {
            other_method = true;
            continue;
        }
        match = &r;
        rest = std::string(path.substr(r.path.ends_with('/') ? r.path.size() : path.size()));
    }
    if (!match) {
        if (other_method) return fail("method_not_allowed", "not with this method", "Allow: " + std::string(
            path == "info" || path.starts_with("users/") || path.starts_with("rooms/") ? "GET" : "POST") + "\r\n");
        return fail("not_found", "no such server API path");
    }
    if (!(key->scopes & match->scope)) return fail("forbidden", "this key's scopes do not allow this request");

    Call c{ctx_, req, *key, nullptr, answered};
    if (std::string_view(match->method) == "POST") {
        if (plugin::has_nul(plugin::view(h->http_body(req))))
            return c.error("bad_json", "a string holds a NUL (\\u0000), which cannot be kept");
        c.body = plugin::parse_json(h->http_body(req));
        if (!c.body || !cJSON_IsObject(c.body.get()) || plugin::has_duplicate_key(c.body.get()))
            return c.error("bad_json", "the body must be a JSON object, each key once");
    } else if (!plugin::view(h->http_body(req)).empty()) {
        return c.error("bad_request", "a GET request has no body");
    }
    ctx_.log(AURORA_LOG_DEBUG, "server_api: %s %s by key %s", match->method, std::string(path).c_str(), key->name.c_str());
    switch (match->op) {
    case Op::Publish: return publish(c);
    case Op::Broadcast: return broadcast(c);
    case Op::Disconnect: return disconnect(c);
    case Op::Ban: return ban(c);
    case Op::Unban: return unban(c);
    case Op::Info: return info(c);
    case Op::User:  // the host has percent-decoded the path (once: an id may hold '%')
        if (!valid_user_id(rest)) return c.error("bad_user", "a user id is 1-128 characters without control characters");
        return user(c, rest);
    case Op::Presence: {
        size_t slash = rest.find('/');
        std::string room = rest.substr(0, slash);
        if (slash == std::string::npos || rest.substr(slash) != "/presence") return c.error("not_found", "no such server API path");
        if (!valid_room(room)) return c.error("bad_room", "a room name is 1-64 characters of A-Z a-z 0-9 _ . : -");
        return presence(c, room);
    }
    }
}

namespace {

// A server API ref is remembered per key and room, apart from clients'
// (chat:ref:<user>:<ref>): a backend's "1042" for a user never answers that
// user's own client's ref 1042 as a duplicate, nor the reverse.
std::string dedup_key(const ServerKey &key, const std::string &room, const std::string &ref) {
    return "chat:ref-api:" + key.name + ":" + std::to_string(room.size()) + ":" + room + ":" + ref;  // rooms hold ':'s
}

std::string result_json(const std::string &room, const SendResult &r) {
    if (!r.code.empty()) return "{\"room\":" + quoted(room) + ",\"code\":" + quoted(r.code) + ",\"error\":" + quoted(r.text) + "}";
    return "{\"room\":" + quoted(room) + ",\"id\":" + quoted(r.id) + ",\"duplicate\":" + (r.duplicate ? "true" : "false") + "}";
}

}  // namespace

void ServerApi::publish(Call &c) {
    Refusal why;
    std::optional<PublishRequest> asked = parse_publish(c.body.get(), false, ctx_.s.max_text_chars, why);
    if (!asked) return c.error(why.code, why.text);
    SendJob job{SendJob::Kind::Message};
    job.room = asked->rooms.front();
    job.user_id = asked->user_id.empty() ? ctx_.s.server_api_user_id : asked->user_id;
    job.username = asked->user_id.empty() ? ctx_.s.server_api_username : asked->username;
    job.text = std::move(asked->text);
    job.ref_value = asked->ref;
    if (!asked->ref.empty()) {
        job.ref_json = quoted(asked->ref);
        job.dedup_key = dedup_key(c.key, job.room, asked->ref);
    }
    aurora_http_req *req = c.req;
    const ChatContext *ctx = &ctx_;
    std::string name = job.room;
    job.done = [ctx, req, name](const SendResult &r) {
        if (!r.code.empty()) {
            ctx->host->http_reply(req, status_of(r.code), nullptr,
                                 plugin::str(r.code == "unavailable" ? "Retry-After: 1\r\n" : ""),
                                 plugin::str(error_json(r.code, r.text)));
            return;
        }
        ctx->host->http_reply(req, 200, nullptr, aurora_str{}, plugin::str(result_json(name, r)));
    };
    c.answered = true;  // by `done`, exactly once
    sender_.submit(std::move(job));
}

void ServerApi::broadcast(Call &c) {
    Refusal why;
    std::optional<PublishRequest> asked = parse_publish(c.body.get(), true, ctx_.s.max_text_chars, why);
    if (!asked) return c.error(why.code, why.text);
    const std::vector<std::string> &names = asked->rooms;
    const std::string &user_id = asked->user_id.empty() ? ctx_.s.server_api_user_id : asked->user_id;
    const std::string &username = asked->user_id.empty() ? ctx_.s.server_api_username : asked->username;
    // One reply once every room answered, in the order asked.
    struct Gather {
        aurora_http_req *req;
        std::vector<std::string> rooms, results;
        size_t left;
    };
    auto g = std::make_shared<Gather>(Gather{c.req, names, std::vector<std::string>(names.size()), names.size()});
    c.answered = true;
    const ChatContext *ctx = &ctx_;
    for (size_t i = 0; i < names.size(); ++i) {
        SendJob job{SendJob::Kind::Message};
        job.room = names[i];
        job.user_id = user_id;
        job.username = username;
        job.text = asked->text;
        if (!asked->ref.empty()) {  // one message per room for the ref
            job.ref_value = asked->ref;
            job.ref_json = quoted(asked->ref);
            job.dedup_key = dedup_key(c.key, names[i], asked->ref);
        }
        job.done = [ctx, g, i](const SendResult &r) {
            g->results[i] = result_json(g->rooms[i], r);
            if (--g->left > 0) return;
            std::string body = "{\"results\":[";
            for (size_t k = 0; k < g->results.size(); ++k) body += (k ? "," : "") + g->results[k];
            ctx->host->http_reply(g->req, 200, nullptr, aurora_str{}, plugin::str(body + "]}"));
        };
        sender_.submit(std::move(job));
    }
}

// One command whose integer reply becomes the answer: 200 with
// answer(integer), or 503 when Redis is away or does not answer.
void ServerApi::answer_integer(Call &c, const std::vector<std::string_view> &argv,
                               std::function<std::string(long long)> answer) {
    aurora_http_req *req = c.req;
    const ChatContext *ctx = &ctx_;
    bool queued = cmd_.command(argv, [ctx, req, answer = std::move(answer)](const redisReply *r) {
        if (!r || r->type != REDIS_REPLY_INTEGER) return unavailable(ctx, req, "Redis did not answer in time");
        ctx->host->http_reply(req, 200, nullptr, aurora_str{}, plugin::str(answer(r->integer)));
    });
    if (!queued) return c.error("unavailable", "Redis is unavailable", "Retry-After: 1\r\n");
    c.answered = true;
}

void ServerApi::disconnect(Call &c) {
    Refusal why;
    std::optional<TargetRequest> t = parse_target(c.body.get(), TargetKind::Disconnect, why);
    if (!t) return c.error(why.code, why.text);
    const std::string event = "{\"op\":\"disconnect\",\"userId\":" + quoted(t->user_id) + ",\"reason\":" + quoted(t->reason) + "}";
    answer_integer(c, {"PUBLISH", kControlChannel, event}, [user = t->user_id](long long replicas) {
        return "{\"user_id\":" + quoted(user) + ",\"replicas\":" + std::to_string(replicas) + "}";
    });
}

// The ban and its announcement in one script: a replica that loads the bans
// after this ran sees it, one subscribed before gets the event (on both
// channels: chat's, and the bans-only one the auth plugin follows).
//   KEYS[1] chat:bans   ARGV: user, until_ms (0: unban), now_ms, control channel, event, bans channel
static constexpr const char *kBanScript = R"lua(
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
if ARGV[2] == '0' then redis.call('ZREM', KEYS[1], ARGV[1]) else redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1]) end
redis.call('PUBLISH', ARGV[6], ARGV[5])
return redis.call('PUBLISH', ARGV[4], ARGV[5])
)lua";

void ServerApi::ban(Call &c) {
    Refusal why;
    std::optional<TargetRequest> t = parse_target(c.body.get(), TargetKind::Ban, why);
    if (!t) return c.error(why.code, why.text);
    const uint64_t now = ctx_.host->now_wall_ms();
    const uint64_t until = now + static_cast<uint64_t>(t->duration_s) * 1000;
    const std::string event = "{\"op\":\"ban\",\"userId\":" + quoted(t->user_id) + ",\"until_ms\":" + std::to_string(until) +
                              ",\"reason\":" + quoted(t->reason) + "}";
    const std::string reply = "{\"user_id\":" + quoted(t->user_id) + ",\"until_ms\":" + std::to_string(until) + "}";
    answer_integer(c, {"EVAL", kBanScript, "1", kBansKey, t->user_id, std::to_string(until), std::to_string(now),
                       kControlChannel, event, plugin::Moderation::kBanChannel},
                   [reply](long long) { return reply; });
}

void ServerApi::unban(Call &c) {
    Refusal why;
    std::optional<TargetRequest> t = parse_target(c.body.get(), TargetKind::Unban, why);
    if (!t) return c.error(why.code, why.text);
    const std::string now = std::to_string(ctx_.host->now_wall_ms());
    const std::string event = "{\"op\":\"unban\",\"userId\":" + quoted(t->user_id) + "}";
    const std::string reply = "{\"user_id\":" + quoted(t->user_id) + "}";
    answer_integer(c, {"EVAL", kBanScript, "1", kBansKey, t->user_id, "0", now, kControlChannel, event,
                       plugin::Moderation::kBanChannel},
                   [reply](long long) { return reply; });
}

void ServerApi::presence(Call &c, const std::string &room) {
    const std::string now = std::to_string(ctx_.host->now_wall_ms());
    const std::string key = ctx_.presence_key(room);
    auto total = std::make_shared<long long>(-1);
    aurora_http_req *req = c.req;
    const ChatContext *ctx = &ctx_;
    bool sent = cmd_.command({"ZCOUNT", key, now, "+inf"}, [total](const redisReply *r) {
        if (r && r->type == REDIS_REPLY_INTEGER) *total = r->integer;
    });
    sent = sent && cmd_.command({"ZRANGEBYSCORE", key, now, "+inf", "LIMIT", "0", std::to_string(ctx_.s.presence_snapshot_max)},
                                [ctx, req, room, total](const redisReply *r) {
                                    if (!r || r->type != REDIS_REPLY_ARRAY || *total < 0)
                                        return unavailable(ctx, req, "Redis did not answer");
                                    std::vector<std::string_view> members;
                                    for (size_t i = 0; i < r->elements; ++i)
                                        if (r->element[i]->type == REDIS_REPLY_STRING)
                                            members.emplace_back(r->element[i]->str, r->element[i]->len);
                                    ctx->host->http_reply(req, 200, nullptr, aurora_str{},
                                                         plugin::str(presence_snapshot_json(room, members, *total, {})));
                                });
    if (!sent) return c.error("unavailable", "Redis is unavailable", "Retry-After: 1\r\n");  // a ZCOUNT alone may be queued: its answer is dropped
    c.answered = true;
}

void ServerApi::user(Call &c, const std::string &user_id) {
    const std::string now = std::to_string(ctx_.host->now_wall_ms());
    answer_integer(c, {"ZCOUNT", online_key(user_id), now, "+inf"}, [user_id](long long n) {
        return "{\"user_id\":" + quoted(user_id) + ",\"online\":" + (n > 0 ? "true" : "false") +
               ",\"connections\":" + std::to_string(n) + "}";
    });
}

void ServerApi::info(Call &c) {
    aurora_http_req *req = c.req;
    const ChatContext *ctx = &ctx_;
    plugin::AsyncRedis *cmd = &cmd_;
    if (!cmd_.command({"HGETALL", kReplicasKey}, [ctx, req, cmd](const redisReply *r) {
            if (!r || r->type != REDIS_REPLY_ARRAY)
                return unavailable(ctx, req, "Redis did not answer");
            // Replicas that stopped refreshing for presence_ttl_s are gone (and forgotten here).
            const uint64_t now = ctx->host->now_wall_ms();
            const uint64_t ttl = static_cast<uint64_t>(ctx->s.presence_ttl_s) * 1000;
            std::string list;
            long long total = 0;
            size_t count = 0;
            for (size_t i = 0; i + 1 < r->elements; i += 2) {
                std::string id = plugin::reply_text(r->element[i]);
                plugin::Json line = plugin::parse_json(plugin::reply_text(r->element[i + 1]));
                const cJSON *conns = line ? cJSON_GetObjectItemCaseSensitive(line.get(), "connections") : nullptr;
                const cJSON *seen = line ? cJSON_GetObjectItemCaseSensitive(line.get(), "seen_ms") : nullptr;
                if (!cJSON_IsNumber(conns) || !cJSON_IsNumber(seen) || static_cast<uint64_t>(seen->valuedouble) + ttl < now) {
                    cmd->command({"HDEL", kReplicasKey, id}, [](const redisReply *) {});
                    continue;
                }
                list += std::string(count++ ? "," : "") + "{\"id\":" + quoted(id) + ",\"connections\":" +
                        std::to_string(static_cast<long long>(conns->valuedouble)) + ",\"seen_ms\":" +
                        std::to_string(static_cast<long long>(seen->valuedouble)) + "}";
                total += static_cast<long long>(conns->valuedouble);
            }
            ctx->host->http_reply(req, 200, nullptr, aurora_str{},
                                 plugin::str("{\"replica\":" + quoted(ctx->replica) + ",\"replicas\":[" + list +
                                             "],\"connections\":" + std::to_string(total) + "}"));
        }))
        return c.error("unavailable", "Redis is unavailable", "Retry-After: 1\r\n");
    c.answered = true;
}

}  // namespace aurora::chat
