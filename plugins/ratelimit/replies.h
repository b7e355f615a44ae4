// The frames this plugin sends back, built with cJSON (never by hand).
//   {"type":"rate_limited","retry_after_ms":N,"limit":"room","ref":...}
//   {"type":"error","code":"rate_limit_unavailable","message":...,"ref":...}
// `ref_json` is the request's "ref" as JSON text ("" when absent).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace aurora::ratelimit {

std::string rate_limited_reply(int64_t retry_after_ms, std::string_view limit, std::string_view ref_json);
std::string unavailable_reply(std::string_view ref_json);

}  // namespace aurora::ratelimit
