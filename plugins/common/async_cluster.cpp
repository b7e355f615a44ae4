#include "async_cluster.h"

#include <algorithm>

namespace aurora::plugin {

namespace {
constexpr auto kRefreshEvery = std::chrono::milliseconds(250);  // while a master is down
}

AsyncCluster::AsyncCluster(const PluginHandle &plugin, RedisUrl url, std::chrono::milliseconds timeout,
                           size_t max_pending, std::string name)
    : plugin_(plugin), url_(std::move(url)), timeout_(timeout), max_pending_(max_pending), name_(std::move(name)) {}

AsyncCluster::~AsyncCluster() {
    if (timer_) plugin_.host->timer_stop(timer_);
}

AsyncCluster::Node &AsyncCluster::node(const HostPort &at, bool seed) {
    for (auto &n : nodes_)
        if (n->at == at) {
            n->seed = n->seed || seed;
            return *n;
        }
    auto n = std::make_unique<Node>();
    n->at = at;
    n->seed = seed;
    RedisUrl one = url_;
    if (cluster()) {
        one.nodes.clear();
        one.host = at.host;
        one.port = at.port;
    }
    n->redis = std::make_unique<AsyncRedis>(plugin_, std::move(one), timeout_, max_pending_,
                                            cluster() ? name_ + " " + at.host + ":" + std::to_string(at.port) : name_);
    AsyncRedis *r = n->redis.get();
    r->on_up([this, r] {
        if (cluster() && (stale_ || map_.empty())) ask_slots();
        if (on_node_up_) on_node_up_(*r);
    });
    r->on_down([this, r](const std::string &) {
        if (cluster()) stale_ = true;
        if (on_node_down_) on_node_down_(*r);
    });
    if (cluster()) r->on_error_reply([this, at](std::string_view e) { redirected(e, at); });
    if (before_write_) r->before_write([this, r] { before_write_(*r); });
    nodes_.push_back(std::move(n));
    if (timer_) r->start();  // after start(): a master learned from the map
    return *nodes_.back();
}

bool AsyncCluster::start() {
    if (!cluster()) {
        node({url_.host, url_.port}, true);
        route_ = {nodes_.front().get()};
        return nodes_.front()->redis->start();
    }
    for (const HostPort &seed : url_.nodes) node(seed, true);  // not started yet: timer_ is not set
    timer_ = plugin_.host->timer_start(plugin_.self, 100, 100, tick, this);
    if (!timer_) return false;
    for (auto &n : nodes_)
        if (!n->redis->start()) return false;
    return true;
}

bool AsyncCluster::up(uint16_t slot) const {
    if (!cluster()) return route_.size() == 1 && route_.front()->redis->up();
    int i = map_.master_index(slot);
    return i >= 0 && static_cast<size_t>(i) < route_.size() && route_[static_cast<size_t>(i)]->redis->up();
}

bool AsyncCluster::all_up() const {
    if (route_.empty()) return false;
    return std::all_of(route_.begin(), route_.end(), [](const Node *n) { return n->redis->up(); });
}

AsyncRedis *AsyncCluster::route(uint16_t slot) {
    if (!cluster()) return route_.empty() ? nullptr : route_.front()->redis.get();
    int i = map_.master_index(slot);
    if (i < 0 || static_cast<size_t>(i) >= route_.size()) {
        stale_ = true;
        return nullptr;
    }
    return route_[static_cast<size_t>(i)]->redis.get();
}

bool AsyncCluster::command(uint16_t slot, const std::vector<std::string_view> &argv, AsyncRedis::Callback cb) {
    AsyncRedis *r = route(slot);
    return r && r->command(argv, std::move(cb));
}

bool AsyncCluster::command_at(const HostPort &at, bool asking, const std::vector<std::string_view> &argv,
                              AsyncRedis::Callback cb) {
    Node &n = node(at, false);
    n.keep_until = AsyncRedis::Clock::now() + std::chrono::seconds(10);  // more ASKs follow while the slot moves
    AsyncRedis &r = *n.redis;
    if (!r.up()) return false;
    if (asking && !r.command({"ASKING"}, [](const redisReply *) {})) return false;
    return r.command(argv, std::move(cb));
}

void AsyncCluster::each_up(const std::function<void(AsyncRedis &)> &fn) {
    for (Node *n : route_)
        if (n->redis->up()) fn(*n->redis);
}

// route_ follows the map: one node per master, made when first named.
void AsyncCluster::reroute() {
    route_.clear();
    for (const HostPort &m : map_.masters()) route_.push_back(&node(m, false));
    if (on_map_) on_map_();
}

void AsyncCluster::redirected(std::string_view error, const HostPort &from) {
    if (error.starts_with("CLUSTERDOWN") || error.starts_with("TRYAGAIN")) {
        stale_ = true;
        return;
    }
    std::optional<Redirect> r = parse_redirect(error, from);
    if (!r || r->kind != Redirect::Kind::Moved) return;  // ASK: the caller's, for that one command
    map_.moved(r->slot, r->to);
    stale_ = true;  // a MOVED for one slot usually means many moved
    reroute();
}

void AsyncCluster::ask_slots() {
    if (asking_) return;
    // Any node that is up can answer; a master first (it was in the map).
    AsyncRedis *via = nullptr;
    for (Node *n : route_)
        if (n->redis->up()) via = n->redis.get();
    for (auto &n : nodes_)
        if (!via && n->redis->up()) via = n->redis.get();
    if (!via) return;
    HostPort from = via->server();
    if (!via->command({"CLUSTER", "SLOTS"}, [this, from](const redisReply *r) {
            asking_ = false;
            std::string err;
            if (!r || !map_.load(r, err, from)) {
                if (r) plugin_.log(AURORA_LOG_WARN, "redis (%s): %s", name_.c_str(), err.c_str());
                return;
            }
            stale_ = false;
            reroute();
        }))
        return;
    asking_ = true;
    last_ask_ = AsyncRedis::Clock::now();
}

void AsyncCluster::tick(void *p) {
    auto *self = static_cast<AsyncCluster *>(p);
    auto now = AsyncRedis::Clock::now();
    bool degraded = self->map_.empty() || !self->all_up();
    if ((self->stale_ || degraded) && now - self->last_ask_ >= kRefreshEvery) {
        self->asking_ = false;  // an answer that never came (its connection's deadline ends it anyway)
        self->ask_slots();
    }
    // Nodes neither masters nor seeds (a failed-over master, now a replica
    // or gone) are closed here, outside their callbacks: taken out of the
    // list first, since what their callbacks do may add a node.
    std::vector<std::unique_ptr<Node>> gone;
    for (auto it = self->nodes_.begin(); it != self->nodes_.end();) {
        if (!(*it)->seed && now >= (*it)->keep_until &&
            std::find(self->route_.begin(), self->route_.end(), it->get()) == self->route_.end()) {
            gone.push_back(std::move(*it));
            it = self->nodes_.erase(it);
        } else {
            ++it;
        }
    }
    for (auto &n : gone) {
        n->redis->stop();  // waiting callbacks get nullptr
        self->retired_.push_back(std::move(n));
    }
}

}  // namespace aurora::plugin
