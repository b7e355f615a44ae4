// The server API (docs/server-api.md): what a product's backend asks of the
// chat servers over HTTP, with an API key, instead of speaking the client
// protocol as a fake user. Off unless the chat setting `server_api` is on.
//
//   POST {base}publish      into a room, through the send pipeline's atomic
//                           store-and-publish: stored, resumable, deduplicated by `ref`
//   POST {base}broadcast    the same into several rooms
//   POST {base}disconnect   a user's connections, on every replica
//   POST {base}ban, unban   for a duration: refused at connect and closed, on every replica
//   GET  {base}rooms/R/presence, users/U, info
//
// Every replica follows the bans and disconnects through a Moderation
// (plugins/common/moderation.h: chat:bans and the chat:control channel),
// so a replica that starts or reconnects later knows them; the auth
// plugin keeps one too and refuses a banned user at the handshake. Who is online is a
// sorted set per user (chat:online:<user>: "<replica>:<conn>" by expiry),
// the replicas a hash (chat:replicas), both refreshed as presence is.
//
// Thread contract: [service] (start() in init, the destructor in shutdown).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "chat_context.h"
#include "moderation.h"
#include "redis_async.h"
#include "send_pipeline.h"
#include "server_keys.h"

namespace aurora::chat {

class ServerApi {
public:
    ServerApi(const ChatContext &ctx, SendPipeline &sender, ServerKeys keys);
    ~ServerApi();
    // init: routes, Redis connections, the refresh timer. False after logging why.
    bool start();
    // Subscribed to the control channel and the bans loaded.
    bool ready() const { return moderation_.ready(); }
    // Banned now (a map lookup).
    bool banned(const std::string &user_id) const;
    void connected(aurora_conn_id conn, const std::string &user_id);
    void disconnected(aurora_conn_id conn, const std::string &user_id);

    static constexpr size_t kMaxPending = 65536;  // commands waiting for Redis on the API's connection
    static constexpr uint16_t kCloseDisconnected = 4001;
    static constexpr uint16_t kCloseBanned = 4003;

    struct Call;  // one request: the key, the parsed body (server_api.cpp)

private:
    static void on_http(void *self, aurora_http_req *req);
    static void on_openapi(void *self, aurora_http_req *req);
    void handle(aurora_http_req *req, bool &answered);
    void publish(Call &c);
    void broadcast(Call &c);
    void disconnect(Call &c);
    void ban(Call &c);
    void unban(Call &c);
    void presence(Call &c, const std::string &room);
    void user(Call &c, const std::string &user_id);
    void info(Call &c);
    void answer_integer(Call &c, const std::vector<std::string_view> &argv, std::function<std::string(long long)> answer);
    void refresh();
    void close_user(const std::string &user_id, uint16_t code, const std::string &reason);
    std::string online_key(std::string_view user_id) const { return "chat:online:" + std::string(user_id); }
    std::string online_member(aurora_conn_id conn) const { return ctx_.replica + ":" + std::to_string(conn); }

    const ChatContext &ctx_;
    SendPipeline &sender_;
    ServerKeys keys_;
    plugin::AsyncRedis cmd_;
    plugin::Moderation moderation_;  // chat:bans and chat:control (plugins/common/moderation.h)
    aurora_timer *refresh_timer_ = nullptr;
    std::unordered_map<std::string, std::set<aurora_conn_id>> conns_;  // local connections by user
    size_t local_connections_ = 0;
};

}  // namespace aurora::chat
