#include "sentinel_watch.h"

#include <charconv>
#include <string_view>

#include "redis_async.h"

namespace aurora::plugin {

namespace {
std::string_view text(const redisReply *r) { return r ? std::string_view(r->str, r->len) : std::string_view(); }

std::optional<HostPort> host_port(std::string_view host, std::string_view port) {
    HostPort out{std::string(host), 0};
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), out.port);
    if (host.empty() || ec != std::errc() || p != port.data() + port.size() || out.port < 1 || out.port > 65535)
        return std::nullopt;
    return out;
}
}  // namespace

SentinelWatch::SentinelWatch(const PluginHandle &plugin, const RedisUrl &target, std::chrono::milliseconds timeout,
                             const std::string &name)
    : plugin_(plugin), sentinels_(target.sentinels), master_name_(target.master_name), name_(name) {
    RedisUrl first;  // plain mode: no password, database 0 (Sentinels have neither)
    first.host = sentinels_.front().host;
    first.port = sentinels_.front().port;
    conn_ = std::make_unique<AsyncRedis>(plugin, first, timeout, 16, name + " sentinel");
}

SentinelWatch::~SentinelWatch() = default;

bool SentinelWatch::start() {
    conn_->on_up([this] { ask(); });
    conn_->on_unreachable([this] { next_sentinel(); });
    conn_->on_down([this](const std::string &) { next_sentinel(); });
    return conn_->start();
}

void SentinelWatch::next_sentinel() {
    current_ = (current_ + 1) % sentinels_.size();
    conn_->retarget(sentinels_[current_]);
}

// Asked first, subscribed after the answer: hiredis cannot take a plain
// reply once the connection is subscribed.
void SentinelWatch::ask() {
    conn_->command({"SENTINEL", "get-master-addr-by-name", master_name_}, [this](const redisReply *r) {
        if (!r) return;  // lost: the next connection asks again
        last_answer_ = std::chrono::steady_clock::now();
        if (std::optional<HostPort> m = master_address(r)) {
            found(*m, false);
        } else {
            plugin_.log(AURORA_LOG_WARN, "redis (%s): Sentinel %s:%d does not know master \"%s\"%s%.*s", name_.c_str(),
                        sentinels_[current_].host.c_str(), sentinels_[current_].port, master_name_.c_str(),
                        r->type == REDIS_REPLY_ERROR ? ": " : "", static_cast<int>(text(r).size()), text(r).data());
        }
        // ["message", "+switch-master", "<name> <old-ip> <old-port> <new-ip> <new-port>"]
        conn_->subscribe({"SUBSCRIBE", "+switch-master"}, [this](const redisReply *m) {
            if (m->type != REDIS_REPLY_ARRAY || m->elements != 3 || text(m->element[0]) != "message") return;
            std::string_view event = text(m->element[2]);
            std::vector<std::string_view> f;
            for (size_t start = 0; start <= event.size();) {
                size_t sp = std::min(event.find(' ', start), event.size());
                f.push_back(event.substr(start, sp - start));
                start = sp + 1;
            }
            if (f.size() == 5 && f[0] == master_name_)
                if (auto to = host_port(f[3], f[4])) found(*to, true);
        });
    });
}

void SentinelWatch::found(HostPort master, bool switched) {
    if (master_ == master) return;
    const auto now = std::chrono::steady_clock::now();
    if (switched) {
        switched_at_ = now;
    } else if (now - switched_at_ < std::chrono::seconds(10)) {
        // A Sentinel that has not heard of the failover yet (they learn it
        // from the leader within seconds): the announcement stands.
        plugin_.log(AURORA_LOG_INFO, "redis (%s): a Sentinel still names %s:%d; keeping %s:%d, announced by a failover",
                    name_.c_str(), master.host.c_str(), master.port, master_->host.c_str(), master_->port);
        return;
    }
    const char *how = switched ? "switched by a failover" : "asked";
    plugin_.log(AURORA_LOG_INFO, "redis (%s): master \"%s\" is at %s:%d (%s)", name_.c_str(), master_name_.c_str(),
                master.host.c_str(), master.port, how);
    master_ = std::move(master);
}

void SentinelWatch::refresh(Why why) {
    auto now = std::chrono::steady_clock::now();
    if (now - last_refresh_ < std::chrono::milliseconds(500)) return;
    if (why == Why::Down && conn_->up() && now - last_answer_ < std::chrono::milliseconds(500)) return;
    last_refresh_ = now;
    conn_->reconnect_soon();
}

}  // namespace aurora::plugin
