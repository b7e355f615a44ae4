// Requests in progress per client address: each login or registration holds
// a ticket from the moment its body is accepted until its job is done, and an
// address holding `max_per_addr` tickets gets 429 at once. Bounds what one
// client can queue (and make the workers hash) before any Redis counter has
// seen a single failure: the Redis throttles count outcomes, so without this
// a burst of N concurrent requests would all pass their checks together.
//
// Thread contract: internally locked; acquire() on the service thread, a
// ticket released on whichever thread destroys it (a worker, usually). The
// limit must outlive every ticket (AuthPlugin declares it before the pool).
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace aurora::auth {

class InFlightLimit {
public:
    class Ticket {
    public:
        Ticket(InFlightLimit &limit, std::string addr) : limit_(limit), addr_(std::move(addr)) {}
        ~Ticket() { limit_.release(addr_); }
        Ticket(const Ticket &) = delete;
        Ticket &operator=(const Ticket &) = delete;

    private:
        InFlightLimit &limit_;
        std::string addr_;
    };
    using TicketPtr = std::shared_ptr<Ticket>;  // shared: jobs are std::function (copyable)

    explicit InFlightLimit(size_t max_per_addr) : max_(max_per_addr) {}

    // A ticket for one more request from `addr`, or nullptr when it already
    // has `max_per_addr` in progress (never nullptr when the limit is 0).
    TicketPtr acquire(const std::string &addr);
    size_t in_progress(const std::string &addr) const;

private:
    void release(const std::string &addr);

    const size_t max_;  // 0 = no limit
    mutable std::mutex mu_;
    std::unordered_map<std::string, size_t> counts_;  // guarded by mu_; no zero entries
};

}  // namespace aurora::auth
