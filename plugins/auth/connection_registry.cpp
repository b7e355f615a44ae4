#include "connection_registry.h"

namespace aurora::auth {

void ConnectionRegistry::opened(aurora_conn_id id, std::string user_id) {
    std::lock_guard lock(mu_);
    entries_[id] = Entry{std::move(user_id), false, false};
}

ConnectionRegistry::AfterAdmit ConnectionRegistry::admitted(aurora_conn_id id, bool ok) {
    std::lock_guard lock(mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return ok ? AfterAdmit::Release : AfterAdmit::Keep;
    if (it->second.closed) {
        entries_.erase(it);
        return ok ? AfterAdmit::Release : AfterAdmit::Keep;
    }
    if (!ok) {
        entries_.erase(it);
        return AfterAdmit::Close;
    }
    it->second.counted = true;
    return AfterAdmit::Keep;
}

void ConnectionRegistry::forget(aurora_conn_id id) {
    std::lock_guard lock(mu_);
    entries_.erase(id);
}

bool ConnectionRegistry::closed(aurora_conn_id id, std::string &user_id) {
    std::lock_guard lock(mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return false;
    if (!it->second.counted) {
        it->second.closed = true;  // the admit in flight releases
        return false;
    }
    user_id = std::move(it->second.user_id);
    entries_.erase(it);
    return true;
}

std::vector<std::pair<std::string, aurora_conn_id>> ConnectionRegistry::counted() const {
    std::lock_guard lock(mu_);
    std::vector<std::pair<std::string, aurora_conn_id>> out;
    for (const auto &[id, e] : entries_)
        if (e.counted) out.emplace_back(e.user_id, id);
    return out;
}

}  // namespace aurora::auth
