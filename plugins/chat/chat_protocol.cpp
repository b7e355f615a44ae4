#include "chat_protocol.h"


namespace aurora::chat {

namespace {
constexpr std::string_view kEnvelopeHead = "{\"type\":\"message\",\"id\":\"";
}

bool valid_room(std::string_view room) {
    if (room.empty() || room.size() > 64) return false;
    for (char c : room) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                  c == '.' || c == ':' || c == '-';
        if (!ok) return false;
    }
    return true;
}

size_t code_points(std::string_view s) {
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
}

std::string quoted(std::string_view s) {
    static const char hex[] = "0123456789abcdef";
    std::string out = "\"";
    for (unsigned char c : s) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (c < 0x20) {
                out += "\\u00";
                out += hex[c >> 4];
                out += hex[c & 0xF];
            } else {
                out += static_cast<char>(c);
            }
        }
    }
    out += '"';
    return out;
}

EnvelopeParts message_envelope(std::string_view room, std::string_view username, std::string_view user_id,
                               std::string_view text, std::string_view ref_json) {
    EnvelopeParts p;
    p.prefix = std::string(kEnvelopeHead);
    p.middle = "\",\"room\":" + quoted(room) + ",\"user\":" + quoted(username) + ",\"userId\":" + quoted(user_id) +
               ",\"text\":" + quoted(text) + ",\"ts\":";
    p.suffix = ref_json.empty() ? "}" : ",\"ref\":" + std::string(ref_json) + "}";
    return p;
}

std::string message_json(std::string_view id, std::string_view room, std::string_view username,
                         std::string_view user_id, std::string_view text, std::string_view ref_json) {
    EnvelopeParts p = message_envelope(room, username, user_id, text, ref_json);
    std::string_view ms = id.substr(0, id.find('-'));
    return p.prefix + std::string(id) + p.middle + std::string(ms) + p.suffix;
}

std::string_view envelope_id(std::string_view payload) {
    if (!payload.starts_with(kEnvelopeHead)) return {};
    std::string_view rest = payload.substr(kEnvelopeHead.size());
    size_t q = rest.find('"');
    return q == std::string_view::npos ? std::string_view() : rest.substr(0, q);
}

std::string error_json(std::string_view code, std::string_view message, std::string_view ref_json) {
    std::string out = "{\"type\":\"error\",\"code\":" + quoted(code) + ",\"message\":" + quoted(message);
    if (!ref_json.empty()) out += ",\"ref\":" + std::string(ref_json);
    return out + "}";
}

std::string ack_json(std::string_view ref_json, std::string_view extra) {
    std::string out = "{\"type\":\"ack\"";
    if (!ref_json.empty()) out += ",\"ref\":" + std::string(ref_json);
    if (!extra.empty()) out += "," + std::string(extra);
    return out + "}";
}

}  // namespace aurora::chat
