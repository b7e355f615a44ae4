#include "inflight_limit.h"

namespace aurora::auth {

InFlightLimit::TicketPtr InFlightLimit::acquire(const std::string &addr) {
    {
        std::lock_guard lock(mu_);
        size_t &n = counts_[addr];
        if (max_ > 0 && n >= max_) return nullptr;
        ++n;
    }
    return std::make_shared<Ticket>(*this, addr);
}

size_t InFlightLimit::in_progress(const std::string &addr) const {
    std::lock_guard lock(mu_);
    auto it = counts_.find(addr);
    return it == counts_.end() ? 0 : it->second;
}

void InFlightLimit::release(const std::string &addr) {
    std::lock_guard lock(mu_);
    auto it = counts_.find(addr);
    if (it == counts_.end()) return;
    if (--it->second == 0) counts_.erase(it);
}

}  // namespace aurora::auth
