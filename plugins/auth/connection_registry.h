// The connections of this replica that count against the per-user cap, and
// the state of each one's Redis entry. Written by the service thread
// (on_connect / on_disconnect) and by the workers (after admit), read by the
// refresh tick: every member function takes `mu_`, and none does I/O under it.
//
// The two orders an admit and a disconnect can finish in are both handled:
// disconnect before the admit finished marks the entry `closed`, and the admit
// then releases what it just added; disconnect after it returns `counted` so
// the caller releases.
#pragma once

#include <aurora/common.h>

#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace aurora::auth {

class ConnectionRegistry {
public:
    void opened(aurora_conn_id id, std::string user_id);

    enum class AfterAdmit { Keep, Release, Close };
    // A worker's admit result for `id`: admitted or not. Release: the
    // connection left meanwhile, remove its entry from Redis. Close: refused.
    AfterAdmit admitted(aurora_conn_id id, bool ok);
    // The admit failed (Redis down): forget the entry, the connection stays
    // (fail open; logged by the caller).
    void forget(aurora_conn_id id);

    // on_disconnect. True (with the user id) when the caller must release the
    // Redis entry; false if nothing was counted or an admit is still running.
    bool closed(aurora_conn_id id, std::string &user_id);

    // (user id, conn id) of every counted connection, for the refresh tick.
    std::vector<std::pair<std::string, aurora_conn_id>> counted() const;

private:
    struct Entry {
        std::string user_id;
        bool counted = false;
        bool closed = false;
    };
    mutable std::mutex mu_;
    std::map<aurora_conn_id, Entry> entries_;  // guarded by mu_
};

}  // namespace aurora::auth
