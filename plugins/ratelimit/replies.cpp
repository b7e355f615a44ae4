#include "replies.h"

#include "json.h"

namespace aurora::ratelimit {

namespace {

std::string finish(plugin::Json reply, std::string_view ref_json) {
    if (!ref_json.empty()) {
        if (plugin::Json ref = plugin::parse_json(ref_json)) cJSON_AddItemToObject(reply.get(), "ref", ref.release());
    }
    return plugin::to_string(reply.get());
}

}  // namespace

std::string rate_limited_reply(int64_t retry_after_ms, std::string_view limit, std::string_view ref_json) {
    plugin::Json reply(cJSON_CreateObject());
    cJSON_AddStringToObject(reply.get(), "type", "rate_limited");
    cJSON_AddNumberToObject(reply.get(), "retry_after_ms", static_cast<double>(retry_after_ms));
    cJSON_AddStringToObject(reply.get(), "limit", std::string(limit).c_str());
    return finish(std::move(reply), ref_json);
}

}  // namespace aurora::ratelimit
