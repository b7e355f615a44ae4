#include "dead_letters.h"

namespace aurora::ingest {

bool move_to_dead_letters(plugin::RedisConnection &redis, const std::string &stream, const std::string &dead_stream,
                          const std::string &group, const std::string &consumer,
                          const std::vector<DeadLetter> &letters, uint64_t now_ms, std::string &error) {
    if (letters.empty()) return true;
    redis.append({"MULTI"});
    std::vector<std::string> ack{"XACK", stream, group};
    for (const DeadLetter &d : letters) {
        std::vector<std::string> add{"XADD", dead_stream, "*"};
        for (const auto &[k, v] : d.entry->fields) {
            add.push_back(k);
            add.push_back(v);
        }
        for (std::string v : {std::string("originalId"), d.entry->id, std::string("error"), d.error,
                              std::string("deliveries"), std::to_string(d.entry->deliveries), std::string("consumer"),
                              consumer, std::string("deadAt"), std::to_string(now_ms)})
            add.push_back(std::move(v));
        redis.append(add);
        ack.push_back(d.entry->id);
    }
    redis.append(ack);
    redis.append({"EXEC"});
    bool ok = true;
    for (size_t n = redis.pending(); n > 0; --n) {
        plugin::RedisReply r = redis.read(error);
        if (!r) return false;  // connection reset: the transaction did not run
        if (n == 1) {          // EXEC: an array of the queued commands' replies
            if (r->type != REDIS_REPLY_ARRAY) {
                error = r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len) : "EXEC aborted";
                return false;
            }
            for (size_t i = 0; i < r->elements; ++i)
                if (r->element[i]->type == REDIS_REPLY_ERROR) {
                    error = std::string(r->element[i]->str, r->element[i]->len);
                    ok = false;
                }
        } else if (r->type == REDIS_REPLY_ERROR) {
            error = std::string(r->str, r->len);
            ok = false;  // EXEC will answer EXECABORT
        }
    }
    return ok;
}

}  // namespace aurora::ingest
