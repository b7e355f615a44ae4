#include "http_head.h"

#include <algorithm>
#include <cctype>

namespace aurora::host {

namespace {

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
            return false;
    }
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

bool token_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= s.size()) return std::nullopt;  // needs two hex digits
            int h = hex(s[i + 1]), l = hex(s[i + 2]);
            if (h < 0 || l < 0) return std::nullopt;
            char d = static_cast<char>(h * 16 + l);
            if (d == '\0') return std::nullopt;
            out += d;
            i += 2;
        } else if (c == '+' && plus_is_space) {
            out += ' ';
        } else {
            out += c;
        }
    }
    return out;
}

std::optional<std::string_view> HttpHead::header(std::string_view name) const {
    for (const auto &[k, v] : headers) {
        if (k == name) return std::string_view(v);
    }
    return std::nullopt;
}

std::string HttpHead::header_list(std::string_view name) const {
    std::string out;
    for (const auto &[k, v] : headers) {
        if (k != name) continue;
        if (!out.empty()) out += ", ";
        out += v;
    }
    return out;
}

std::vector<std::string> HttpHead::header_items(std::string_view name) const {
    std::vector<std::string> items;
    std::string list = header_list(name);
    std::string_view rest = list;
    while (!rest.empty()) {
        size_t comma = rest.find(',');
        std::string_view item = trim(rest.substr(0, comma));
        if (!item.empty()) items.emplace_back(item);
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
    }
    return items;
}

bool HttpHead::header_has_token(std::string_view name, std::string_view token) const {
    for (const std::string &item : header_items(name)) {
        if (iequals(item, token)) return true;
    }
    return false;
}

std::optional<std::string> HttpHead::query_param(std::string_view key) const {
    std::string_view rest = query;
    while (!rest.empty()) {
        size_t amp = rest.find('&');
        std::string_view kv = rest.substr(0, amp);
        size_t eq = kv.find('=');
        std::string_view k = kv.substr(0, eq);
        std::optional<std::string> dk = percent_decode(k, true);
        if (dk && *dk == key) return percent_decode(eq == std::string_view::npos ? std::string_view() : kv.substr(eq + 1), true);
        if (amp == std::string_view::npos) break;
        rest.remove_prefix(amp + 1);
    }
    return std::nullopt;
}

bool HttpHead::is_websocket_upgrade() const {
    return method == "GET" && version == "HTTP/1.1" && header_has_token("upgrade", "websocket") &&
           header_has_token("connection", "upgrade");
}

std::optional<HttpHead> parse_http_head(std::string_view head, std::string &error) {
    HttpHead h;
    size_t eol = head.find("\r\n");
    if (eol == std::string_view::npos) {
        error = "no request line";
        return std::nullopt;
    }
    std::string_view line = head.substr(0, eol);
    size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
    if (sp1 == std::string_view::npos || sp2 == sp1) {
        error = "malformed request line";
        return std::nullopt;
    }
    h.method = line.substr(0, sp1);
    h.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    h.version = line.substr(sp2 + 1);
    if (h.method.empty() || !std::all_of(h.method.begin(), h.method.end(), token_char)) {
        error = "malformed method";
        return std::nullopt;
    }
    if (h.version != "HTTP/1.1" && h.version != "HTTP/1.0") {
        error = "unsupported HTTP version";
        return std::nullopt;
    }
    if (h.target.empty() || h.target.front() != '/') {
        error = "the target must be an absolute path";
        return std::nullopt;
    }
    for (unsigned char c : h.target) {
        if (c <= 0x20 || c == 0x7F) {
            error = "control character or space in the target";
            return std::nullopt;
        }
    }
    size_t q = h.target.find('?');
    h.path = h.target.substr(0, q);
    if (q != std::string::npos) h.query = h.target.substr(q + 1);

    size_t pos = eol + 2;
    while (pos < head.size()) {
        eol = head.find("\r\n", pos);
        if (eol == std::string_view::npos) {
            error = "header line without CRLF";
            return std::nullopt;
        }
        line = head.substr(pos, eol - pos);
        pos = eol + 2;
        if (line.empty()) return h;  // the blank line: done
        if (line.front() == ' ' || line.front() == '\t') {
            error = "obsolete line folding";
            return std::nullopt;
        }
        size_t colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0) {
            error = "header line without a name";
            return std::nullopt;
        }
        std::string name(line.substr(0, colon));
        if (!std::all_of(name.begin(), name.end(), token_char)) {
            error = "malformed header name";
            return std::nullopt;
        }
        for (char &c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::string_view value = trim(line.substr(colon + 1));
        for (unsigned char c : value) {
            if ((c < 0x20 && c != '\t') || c == 0x7F) {
                error = "control character in a header value";
                return std::nullopt;
            }
        }
        h.headers.emplace_back(std::move(name), std::string(value));
    }
    error = "no blank line after the headers";
    return std::nullopt;
}

}  // namespace aurora::host
