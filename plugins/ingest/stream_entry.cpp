#include "stream_entry.h"

namespace aurora::ingest {

std::vector<StreamEntry> parse_entries(const redisReply *array) {
    std::vector<StreamEntry> out;
    if (!array || array->type != REDIS_REPLY_ARRAY) return out;
    for (size_t i = 0; i < array->elements; ++i) {
        const redisReply *e = array->element[i];
        if (!e || e->type != REDIS_REPLY_ARRAY || e->elements < 1 || e->element[0]->type != REDIS_REPLY_STRING) continue;
        StreamEntry entry;
        entry.id.assign(e->element[0]->str, e->element[0]->len);
        if (auto sid = StreamId::parse(entry.id)) entry.sid = *sid;
        const redisReply *kv = e->elements > 1 ? e->element[1] : nullptr;
        if (!kv || kv->type != REDIS_REPLY_ARRAY) {
            entry.deleted = true;
        } else {
            for (size_t k = 0; k + 1 < kv->elements; k += 2) {
                const redisReply *f = kv->element[k], *v = kv->element[k + 1];
                if (f->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING)
                    entry.fields[std::string(f->str, f->len)] = std::string(v->str, v->len);
            }
        }
        out.push_back(std::move(entry));
    }
    return out;
}

std::vector<StreamEntry> parse_readgroup(const redisReply *reply) {
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) return {};
    const redisReply *stream = reply->element[0];
    if (stream->type != REDIS_REPLY_ARRAY || stream->elements < 2) return {};
    return parse_entries(stream->element[1]);
}

}  // namespace aurora::ingest
