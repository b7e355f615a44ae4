// The auth plugin's state, shared by its hooks (service thread), its HTTP
// handlers (service thread) and its workers.
//
// Thread contract: everything but the members marked otherwise is written by
// init on the main thread before any hook runs or any worker starts, and only
// read afterwards. UserStore, MongoPool, LoginThrottle, RegisterThrottle and
// ConnectionCap are immutable and thread-safe (each worker passes its own
// Redis connection); InFlightLimit and ConnectionRegistry are internally locked.
#pragma once

#include <aurora/aurora.h>

#include <atomic>
#include <memory>
#include <string>

#include "plugin_handle.h"
#include "auth_config.h"
#include "connection_cap.h"
#include "connection_registry.h"
#include "inflight_limit.h"
#include "login_throttle.h"
#include "moderation.h"
#include "mongo_pool.h"
#include "register_throttle.h"
#include "user_store.h"
#include "worker_pool.h"
#include "token_trust.h"

namespace aurora::auth {

struct AuthMetrics {
    aurora_metric *register_ok = nullptr, *register_conflict = nullptr, *register_throttled = nullptr;
    aurora_metric *too_many_pending = nullptr;
    aurora_metric *login_ok = nullptr, *login_failed = nullptr, *login_throttled = nullptr;
    aurora_metric *handshake_accepted = nullptr, *handshake_rejected = nullptr;
    aurora_metric *cap_closed = nullptr, *backend_errors = nullptr;
    aurora_metric *hash_seconds = nullptr;
};

struct AuthPlugin : plugin::PluginHandle {  // host, self, log()
    AuthSettings cfg;
    std::unique_ptr<plugin::MongoPool> mongo;
    std::unique_ptr<UserStore> users;
    std::unique_ptr<LoginThrottle> throttle;
    std::unique_ptr<RegisterThrottle> register_throttle;
    std::unique_ptr<ConnectionCap> cap;
    std::unique_ptr<plugin::TokenTrust> trust;  // the tokens the handshake accepts
    std::unique_ptr<plugin::Moderation> bans;   // enforce_bans: [service thread]
    std::string replica_id;  // names this process's entries in the connection sets
    // A hash of a random password, verified when the username does not exist
    // so that "no such user" costs as much as "wrong password".
    std::string dummy_hash;
    AuthMetrics m;

    ConnectionRegistry conns;             // internally locked
    std::unique_ptr<InFlightLimit> pending;  // internally locked; before `pool`: outlives every ticket
    std::atomic<bool> indexes_ready{false};  // set by worker 0
    std::atomic<bool> backend_up{true};      // last Redis/MongoDB outcome (log once per outage)
    std::unique_ptr<WorkerPool> pool;     // started last in init, joined by the host before shutdown

    // Service thread only: the identity strings handed to the host by
    // authenticate (copied by the host when the hook returns).
    std::string scratch_user_id, scratch_username, scratch_reason;

    // Logs a backend failure once per outage (the first after a success).
    void backend_failed(const char *what, const std::string &error);
    void backend_ok() { backend_up.store(true); }
};

// Routes and handlers (auth_routes.cpp).
aurora_status register_routes(AuthPlugin &st);
// WebSocket hooks (handshake.cpp, connection_limit.cpp).
aurora_auth_verdict authenticate_handshake(AuthPlugin &st, const aurora_handshake *hs, aurora_identity *identity);
void connection_opened(AuthPlugin &st, aurora_conn *conn);
void connection_closed(AuthPlugin &st, aurora_conn *conn);
// Worker 0's periodic work: index creation until it succeeds, refreshes.
void maintenance_tick(AuthPlugin &st, WorkerContext &ctx);

}  // namespace aurora::auth
