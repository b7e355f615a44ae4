// An HTTP/1.1 request head as the front door reads it (RFC 9112 §3-5):
// the request line, the header fields, and the query string of the target,
// percent-decoded on demand. Pure code over bytes; fuzzed and unit-tested.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace aurora::host {

struct HttpHead {
    std::string method, target, path, query, version;  // path/query: the target split at '?', raw
    std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, values trimmed

    // The first field named `name` (lower-case), or nullopt.
    std::optional<std::string_view> header(std::string_view name) const;
    // Every value of `name` joined by ", " (RFC 9110 §5.3); empty if none.
    std::string header_list(std::string_view name) const;
    // The items of the comma-separated list in every field `name`, trimmed, empty ones left out.
    std::vector<std::string> header_items(std::string_view name) const;
    // True if the comma-separated list of `name` has `token` (case-insensitive).
    bool header_has_token(std::string_view name, std::string_view token) const;
    // A query parameter, percent-decoded ('+' is a space); nullopt if absent
    // or if its encoding is broken (a '%' without two hex digits, or %00).
    std::optional<std::string> query_param(std::string_view key) const;

    // A WebSocket opening handshake (RFC 6455 §4.2.1): GET, HTTP/1.1,
    // Upgrade: websocket, Connection: upgrade.
    bool is_websocket_upgrade() const;
};

// Parses `head` (up to and including the blank line). nullopt with `error`
// on anything malformed: a bad request line, a field without a colon or with
// whitespace before it, a control character, obsolete line folding.
std::optional<HttpHead> parse_http_head(std::string_view head, std::string &error);

// Percent-decoding of a URL component; nullopt on a broken escape or %00.
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space);

}  // namespace aurora::host
