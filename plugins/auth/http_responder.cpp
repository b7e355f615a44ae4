#include "http_responder.h"

#include "json.h"

namespace aurora::auth {

HttpResponder::~HttpResponder() {
    if (req_) error(503, "Service unavailable");
}

void HttpResponder::reply(uint16_t status, std::string_view body, std::string_view extra_headers) {
    if (!req_) return;
    std::string headers = cors_ + std::string(extra_headers);
    aurora_http_req *req = req_;
    req_ = nullptr;
    host_->http_reply(req, status, "application/json", plugin::str(headers), plugin::str(body));
}

void HttpResponder::error(uint16_t status, const char *message, std::string_view extra_headers) {
    plugin::Json obj(cJSON_CreateObject());
    cJSON_AddStringToObject(obj.get(), "error", message);
    reply(status, plugin::to_string(obj.get()), extra_headers);
}

}  // namespace aurora::auth
