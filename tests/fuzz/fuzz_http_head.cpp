// The front door's HTTP request head parser (host/src/http_head.h): the
// request line, header fields, the query string, percent-decoding, and what
// the WebSocket handshake reads from it (Upgrade/Connection tokens,
// Sec-WebSocket-Protocol list, Authorization, ?token=).
#include <string>

#include "fuzz_check.h"
#include "http_head.h"

using namespace aurora::host;

namespace {

bool is_token_char(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string percent_encode_all(std::string_view s) {
    static const char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        out += '%';
        out += kHex[c >> 4];
        out += kHex[c & 15];
    }
    return out;
}

void check_decode(std::string_view in) {
    for (bool plus : {false, true}) {
        std::optional<std::string> d = percent_decode(in, plus);
        if (!d) continue;
        FUZZ_CHECK(d->size() <= in.size());
        // %00 is refused; a NUL comes out only if one went in.
        if (d->find('\0') != std::string::npos) FUZZ_CHECK(in.find('\0') != std::string_view::npos);
        if (in.find('%') == std::string_view::npos && (!plus || in.find('+') == std::string_view::npos))
            FUZZ_CHECK(*d == in);
        // Every byte escaped decodes back to itself (but NUL, which %00 cannot carry).
        std::optional<std::string> again = percent_decode(percent_encode_all(*d), plus);
        FUZZ_CHECK(again.has_value() == (d->find('\0') == std::string::npos));
        if (again) FUZZ_CHECK(*again == *d);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    std::string_view in = fuzz_bytes(data, size);
    check_decode(in);

    std::string error;
    std::optional<HttpHead> h = parse_http_head(in, error);
    if (!h) {
        FUZZ_CHECK(!error.empty());
        return 0;
    }
    FUZZ_CHECK(!h->method.empty());
    for (char c : h->method) FUZZ_CHECK(is_token_char(c));
    FUZZ_CHECK(h->version == "HTTP/1.1" || h->version == "HTTP/1.0");
    FUZZ_CHECK(!h->target.empty() && h->target.front() == '/');
    FUZZ_CHECK(h->target == (h->target.find('?') == std::string::npos ? h->path : h->path + "?" + h->query));
    for (const auto &[name, value] : h->headers) {
        FUZZ_CHECK(!name.empty());
        for (char c : name) FUZZ_CHECK(is_token_char(c) && !(c >= 'A' && c <= 'Z'));
        FUZZ_CHECK(value.find_first_of("\r\n") == std::string::npos);
        if (!value.empty()) {
            FUZZ_CHECK(value.front() != ' ' && value.front() != '\t');
            FUZZ_CHECK(value.back() != ' ' && value.back() != '\t');
        }
        FUZZ_CHECK(h->header(name).has_value());
        FUZZ_CHECK(h->header_list(name).find(value) != std::string::npos);
    }
    // What the WebSocket handshake reads.
    bool upgrade = h->is_websocket_upgrade();
    if (upgrade) FUZZ_CHECK(h->method == "GET" && h->version == "HTTP/1.1" && h->header("upgrade"));
    (void)h->header_list("sec-websocket-protocol");
    (void)h->header("authorization");
    (void)h->header_has_token("connection", "upgrade");
    if (std::optional<std::string> t = h->query_param("token")) FUZZ_CHECK(t->find('\0') == std::string::npos);
    // Every key of the query can be looked up.
    std::string_view rest = h->query;
    while (!rest.empty()) {
        size_t amp = rest.find('&');
        std::string_view kv = rest.substr(0, amp);
        if (std::optional<std::string> key = percent_decode(kv.substr(0, kv.find('=')), true)) (void)h->query_param(*key);
        if (amp == std::string_view::npos) break;
        rest.remove_prefix(amp + 1);
    }
    check_decode(h->path);
    return 0;
}
