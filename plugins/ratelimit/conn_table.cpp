#include "conn_table.h"

namespace aurora::ratelimit {

void ConnTable::add(aurora_conn_id id) {
    std::lock_guard lock(mu_);
    conns_.try_emplace(id);
}

void ConnTable::remove(aurora_conn_id id) {
    std::lock_guard lock(mu_);
    conns_.erase(id);
}

int64_t ConnTable::control_hit(aurora_conn_id id, const Limit &limit, int64_t now_ms) {
    std::lock_guard lock(mu_);
    auto it = conns_.find(id);
    return it == conns_.end() ? 0 : it->second.control.hit(limit, now_ms);
}

bool ConnTable::abuse_hit(aurora_conn_id id, const Limit &limit, int64_t now_ms) {
    if (!limit.on()) return false;
    std::lock_guard lock(mu_);
    auto it = conns_.find(id);
    if (it == conns_.end() || it->second.closing) return false;
    if (it->second.refusals.hit(limit, now_ms) == 0) return false;
    it->second.closing = true;
    return true;
}

void ConnTable::joined(aurora_conn_id id, std::string_view room) {
    std::lock_guard lock(mu_);
    auto it = conns_.find(id);
    if (it == conns_.end()) return;
    it->second.rooms.emplace(room);
    it->second.current_room = room;
}

void ConnTable::left(aurora_conn_id id, std::string_view room) {
    std::lock_guard lock(mu_);
    auto it = conns_.find(id);
    if (it == conns_.end()) return;
    Conn &c = it->second;
    if (auto r = c.rooms.find(room); r != c.rooms.end()) c.rooms.erase(r);
    if (c.current_room == room) c.current_room = c.rooms.empty() ? "" : *c.rooms.begin();
}

std::string ConnTable::current_room(aurora_conn_id id) {
    std::lock_guard lock(mu_);
    auto it = conns_.find(id);
    return it == conns_.end() ? std::string() : it->second.current_room;
}

void ConnTable::set_admission_pending(aurora_conn_id id) {
    std::lock_guard lock(mu_);
    if (auto it = conns_.find(id); it != conns_.end()) it->second.pending = true;
}

void ConnTable::admit(aurora_conn_id id) {
    std::lock_guard lock(mu_);
    if (auto it = conns_.find(id); it != conns_.end()) it->second.pending = false;
}

void ConnTable::mark_refused(aurora_conn_id id) {
    std::lock_guard lock(mu_);
    if (auto it = conns_.find(id); it != conns_.end()) {
        it->second.pending = false;
        it->second.refused = true;
    }
}

ConnTable::Admission ConnTable::admission(aurora_conn_id id) {
    std::lock_guard lock(mu_);
    auto it = conns_.find(id);
    if (it == conns_.end()) return Admission::Admitted;
    return it->second.refused ? Admission::Refused : it->second.pending ? Admission::Pending : Admission::Admitted;
}

bool ConnTable::refused(aurora_conn_id id) {
    std::lock_guard lock(mu_);
    auto it = conns_.find(id);
    return it != conns_.end() && it->second.refused;
}

void ConnTable::block_address(const std::string &addr, int64_t until_ms) {
    std::lock_guard lock(mu_);
    if (blocked_until_.size() > 100000) blocked_until_.clear();  // bounded: a flood of addresses cannot grow it
    int64_t &until = blocked_until_[addr];
    if (until_ms > until) until = until_ms;
}

bool ConnTable::address_blocked(const std::string &addr, int64_t now_ms) {
    std::lock_guard lock(mu_);
    auto it = blocked_until_.find(addr);
    if (it == blocked_until_.end()) return false;
    if (it->second > now_ms) return true;
    blocked_until_.erase(it);
    return false;
}

}  // namespace aurora::ratelimit
