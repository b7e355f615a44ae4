// Answers one deferred HTTP request exactly once, from any thread. If a
// responder is destroyed unanswered (a job dropped, an exception) it answers
// 503, so a request can never hang. Holds the CORS lines computed when the
// request arrived.
#pragma once

#include <aurora/aurora.h>

#include <string>
#include <string_view>

namespace aurora::auth {

class HttpResponder {
public:
    HttpResponder(const aurora_host_api *host, aurora_http_req *req, std::string cors)
        : host_(host), req_(req), cors_(std::move(cors)) {}
    ~HttpResponder();
    HttpResponder(const HttpResponder &) = delete;
    HttpResponder &operator=(const HttpResponder &) = delete;

    void reply(uint16_t status, std::string_view body, std::string_view extra_headers = {});
    // {"error": message}
    void error(uint16_t status, const char *message, std::string_view extra_headers = {});
    bool answered() const { return req_ == nullptr; }

private:
    const aurora_host_api *host_;
    aurora_http_req *req_;
    std::string cors_;
};

}  // namespace aurora::auth
