#include "cluster_slots.h"

#include <charconv>

namespace aurora::plugin {

uint16_t crc16(std::string_view data) {
    uint16_t crc = 0;
    for (unsigned char byte : data) {
        crc ^= static_cast<uint16_t>(byte) << 8;
        for (int bit = 0; bit < 8; ++bit)
            crc = static_cast<uint16_t>((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

uint16_t key_slot(std::string_view key) {
    if (size_t open = key.find('{'); open != std::string_view::npos) {
        size_t close = key.find('}', open + 1);
        if (close != std::string_view::npos && close > open + 1) key = key.substr(open + 1, close - open - 1);
    }
    return crc16(key) & (kClusterSlots - 1);
}

namespace {
template <typename T>
bool number(std::string_view s, T &out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
}
}  // namespace

std::optional<Redirect> parse_redirect(std::string_view error, const HostPort &from) {
    Redirect r{};
    if (error.starts_with("MOVED ")) {
        r.kind = Redirect::Kind::Moved;
        error.remove_prefix(6);
    } else if (error.starts_with("ASK ")) {
        r.kind = Redirect::Kind::Ask;
        error.remove_prefix(4);
    } else {
        return std::nullopt;
    }
    size_t sp = error.find(' ');
    if (sp == std::string_view::npos || !number(error.substr(0, sp), r.slot) || r.slot >= kClusterSlots)
        return std::nullopt;
    std::string_view where = error.substr(sp + 1);
    if (where.starts_with(':')) {  // the node does not know its own address: it is the one that answered
        if (from.host.empty() || !number(where.substr(1), r.to.port) || r.to.port < 1 || r.to.port > 65535)
            return std::nullopt;
        r.to.host = from.host;
        return r;
    }
    std::optional<HostPort> to = parse_host_port(where);
    if (!to) return std::nullopt;
    r.to = *to;
    return r;
}

uint16_t SlotMap::node_index(const HostPort &node) {
    for (size_t i = 0; i < nodes_.size(); ++i)
        if (nodes_[i] == node) return static_cast<uint16_t>(i + 1);
    nodes_.push_back(node);
    return static_cast<uint16_t>(nodes_.size());
}

bool SlotMap::load(const redisReply *slots, std::string &error, const HostPort &from) {
    if (!slots || slots->type != REDIS_REPLY_ARRAY) {
        error = "CLUSTER SLOTS: not an array";
        return false;
    }
    SlotMap next;
    for (size_t i = 0; i < slots->elements; ++i) {
        const redisReply *range = slots->element[i];
        if (range->type != REDIS_REPLY_ARRAY || range->elements < 3 || range->element[0]->type != REDIS_REPLY_INTEGER ||
            range->element[1]->type != REDIS_REPLY_INTEGER || range->element[2]->type != REDIS_REPLY_ARRAY ||
            range->element[2]->elements < 2) {
            error = "CLUSTER SLOTS: range " + std::to_string(i) + " is malformed";
            return false;
        }
        long long first = range->element[0]->integer, last = range->element[1]->integer;
        const redisReply *node = range->element[2];
        if (first < 0 || last < first || last >= kClusterSlots || node->element[0]->type != REDIS_REPLY_STRING ||
            node->element[1]->type != REDIS_REPLY_INTEGER || node->element[1]->integer < 1 ||
            node->element[1]->integer > 65535) {
            error = "CLUSTER SLOTS: range " + std::to_string(i) + " is malformed";
            return false;
        }
        HostPort master{std::string(node->element[0]->str, node->element[0]->len),
                        static_cast<int>(node->element[1]->integer)};
        if (master.host.empty() || master.host == "?") master.host = from.host;  // the node answering
        uint16_t idx = next.node_index(master);
        for (long long s = first; s <= last; ++s) next.owner_[static_cast<size_t>(s)] = idx;
    }
    *this = std::move(next);
    return true;
}

const HostPort *SlotMap::master(uint16_t slot) const {
    uint16_t idx = owner_[slot & (kClusterSlots - 1)];
    return idx ? &nodes_[idx - 1] : nullptr;
}

void SlotMap::moved(uint16_t slot, const HostPort &to) { owner_[slot & (kClusterSlots - 1)] = node_index(to); }

}  // namespace aurora::plugin
