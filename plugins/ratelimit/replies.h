// The frame this plugin sends back, built with cJSON (never by hand):
//   {"type":"rate_limited","retry_after_ms":N,"limit":"room","ref":...}
// `ref_json` is the request's "ref" as JSON text ("" when absent). Errors
// ("rate_limit_unavailable") are the host's error frame (msg_reply_error).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace aurora::ratelimit {

std::string rate_limited_reply(int64_t retry_after_ms, std::string_view limit, std::string_view ref_json);

}  // namespace aurora::ratelimit
