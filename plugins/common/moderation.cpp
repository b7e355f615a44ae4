#include "moderation.h"

#include <cstdlib>
#include <vector>

#include "json.h"

namespace aurora::plugin {

Moderation::Moderation(const PluginHandle &plugin, const RedisUrl &url, std::chrono::milliseconds timeout,
                       const char *channel)
    : plugin_(plugin),
      channel_(channel),
      sub_(plugin, url, timeout, 16, "moderation"),
      reads_(plugin, url, timeout, 16, "moderation-reads") {}

Moderation::~Moderation() {
    if (retry_) plugin_.host->timer_stop(retry_);
}

bool Moderation::start() {
    sub_.on_up([this] {
        sub_.subscribe({"SUBSCRIBE", channel_}, [this](const redisReply *r) {
            if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3 || r->element[0]->type != REDIS_REPLY_STRING) return;
            std::string_view kind(r->element[0]->str, r->element[0]->len);
            if (kind == "message" && r->element[2]->type == REDIS_REPLY_STRING) {
                announced(std::string_view(r->element[2]->str, r->element[2]->len));
            } else if (kind == "subscribe") {  // from now on nothing is missed: read what was decided before
                subscribed_ = true;
                load();
            }
        });
    });
    sub_.on_down([this](const std::string &) {
        subscribed_ = false;
        ready_ = false;
    });
    reads_.on_up([this] {
        if (subscribed_ && !ready_) load();
    });
    if (!sub_.start() || !reads_.start()) {
        plugin_.log(AURORA_LOG_ERROR, "moderation: cannot start its Redis connections");
        return false;
    }
    return true;
}

bool Moderation::banned(const std::string &user_id, uint64_t now_ms) const {
    if (bans_.empty()) return false;
    auto it = bans_.find(user_id);
    return it != bans_.end() && it->second > now_ms;
}

// Only once subscribed: a read sent before the SUBSCRIBE ran could miss a
// ban announced between the two.
void Moderation::load() {
    if (!subscribed_) return;
    if (loading_) {  // it may have been sent before this confirmation: once more after it
        again_ = true;
        return;
    }
    const std::string now = std::to_string(plugin_.host->now_wall_ms());
    loading_ = reads_.command(
        {"ZRANGEBYSCORE", kBansKey, now, "+inf", "WITHSCORES", "LIMIT", "0", std::to_string(kMaxBansLoaded)},
        [this](const redisReply *r) {
            loading_ = false;
            std::vector<std::string> replay = std::move(arrived_);
            arrived_.clear();
            if (!r || r->type != REDIS_REPLY_ARRAY) {
                plugin_.log(AURORA_LOG_WARN, "moderation: bans not loaded: %s (again in 1 s)",
                            reply_text(r).c_str());
                if (!retry_)
                    retry_ = plugin_.host->timer_start(plugin_.self, 1000, 0, [](void *p) {
                        auto *m = static_cast<Moderation *>(p);
                        m->plugin_.host->timer_stop(m->retry_);  // one-shot: stopped from inside, as allowed
                        m->retry_ = nullptr;
                        m->load();
                    }, this);
                return;
            }
            bans_.clear();
            for (size_t i = 0; i + 1 < r->elements; i += 2)
                bans_[reply_text(r->element[i])] = std::strtoull(reply_text(r->element[i + 1]).c_str(), nullptr, 10);
            if (r->elements / 2 >= kMaxBansLoaded)
                plugin_.log(AURORA_LOG_WARN, "moderation: more than %zu bans; the ones ending first are loaded",
                            kMaxBansLoaded);
            for (const std::string &payload : replay) apply(payload, false);
            for (const auto &[user, until] : bans_)
                if (on_ban_) on_ban_(user, "");
            if (again_) {
                again_ = false;
                load();
                return;
            }
            ready_ = subscribed_;
        });
    if (!loading_) ready_ = false;  // the reads connection is down: loaded once it is up
}

void Moderation::announced(std::string_view payload) {
    if (loading_) arrived_.emplace_back(payload);
    apply(payload, true);
}

void Moderation::apply(std::string_view payload, bool notify) {
    Json j = parse_json(payload);
    const char *op = j ? get_string(j.get(), "op") : nullptr;
    const char *user = j ? get_string(j.get(), "userId") : nullptr;
    if (!op || !user) return;
    const char *reason = get_string(j.get(), "reason");
    const std::string why = reason ? reason : "";
    const std::string_view o(op);
    if (o == "ban") {
        const cJSON *until = cJSON_GetObjectItemCaseSensitive(j.get(), "until_ms");
        if (!cJSON_IsNumber(until)) return;
        bans_[user] = static_cast<uint64_t>(until->valuedouble);
        if (notify && on_ban_) on_ban_(user, why);
    } else if (o == "unban") {
        bans_.erase(user);
    } else if (o == "disconnect" && notify && on_disconnect_) {
        on_disconnect_(user, why);
    }
}

}  // namespace aurora::plugin
