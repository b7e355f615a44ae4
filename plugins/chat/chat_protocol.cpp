#include "chat_protocol.h"

#include <set>

#include "json.h"

namespace aurora::chat {

namespace {
constexpr std::string_view kEnvelopeHead = "{\"type\":\"message\",\"id\":\"";
}

size_t code_points(std::string_view s) {
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
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

std::string resumed_json(std::string_view room, size_t count, bool complete, std::string_view last_id,
                         std::string_view ref_json) {
    std::string out = "{\"type\":\"resumed\",\"room\":" + quoted(room) + ",\"count\":" + std::to_string(count) +
                      ",\"complete\":" + (complete ? "true" : "false") + ",\"last_id\":" + quoted(last_id);
    if (!ref_json.empty()) out += ",\"ref\":" + std::string(ref_json);
    return out + "}";
}

std::string presence_event_json(std::string_view room, bool joined, std::string_view username,
                                std::string_view user_id) {
    return "{\"type\":\"presence\",\"room\":" + quoted(room) + ",\"event\":" + (joined ? "\"join\"" : "\"leave\"") +
           ",\"user\":" + quoted(username) + ",\"userId\":" + quoted(user_id) + "}";
}

std::string presence_member_json(std::string_view user_id, std::string_view username, std::string_view conn) {
    return "{\"userId\":" + quoted(user_id) + ",\"user\":" + quoted(username) + ",\"conn\":" + quoted(conn) + "}";
}

namespace {

// The JSON string token (quotes included) starting at s[pos], or empty.
std::string_view json_string_at(std::string_view s, size_t pos) {
    if (pos >= s.size() || s[pos] != '"') return {};
    for (size_t i = pos + 1; i < s.size(); ++i) {
        if (s[i] == '\\') {
            ++i;
        } else if (s[i] == '"') {
            return s.substr(pos, i - pos + 1);
        }
    }
    return {};
}

// userId and user of a presence member, as the JSON string tokens
// presence_member_json() wrote: taken as they are, without parsing each
// member (a snapshot reads up to presence_snapshot_max of them). Anything
// else is parsed.
bool member_fields(std::string_view m, std::string &parsed, std::string_view &uid, std::string_view &name) {
    constexpr std::string_view kUid = "{\"userId\":", kUser = ",\"user\":";
    if (m.substr(0, kUid.size()) == kUid) {
        uid = json_string_at(m, kUid.size());
        size_t at = kUid.size() + uid.size();
        if (!uid.empty() && m.substr(at, kUser.size()) == kUser) {
            name = json_string_at(m, at + kUser.size());
            if (!name.empty()) return true;
        }
    }
    plugin::Json j = plugin::parse_json(m);
    const char *u = j ? plugin::get_string(j.get(), "userId") : nullptr;
    const char *n = j ? plugin::get_string(j.get(), "user") : nullptr;
    if (!u || !n) return false;
    std::string qu = quoted(u);
    parsed = qu + quoted(n);
    uid = std::string_view(parsed).substr(0, qu.size());
    name = std::string_view(parsed).substr(qu.size());
    return true;
}

}  // namespace

std::string presence_snapshot_json(std::string_view room, std::span<const std::string_view> members, long long total,
                                   std::string_view ref_json) {
    std::string users;
    std::set<std::string, std::less<>> seen;
    for (std::string_view m : members) {
        std::string parsed;
        std::string_view uid, name;
        if (!member_fields(m, parsed, uid, name)) continue;
        if (!seen.emplace(uid).second) continue;
        if (!users.empty()) users += ',';
        users.append("{\"userId\":").append(uid).append(",\"user\":").append(name).append("}");
    }
    long long listed = static_cast<long long>(members.size());
    long long count = total >= 0 ? total : listed;
    std::string out = "{\"type\":\"presence\",\"room\":" + quoted(room) + ",\"users\":[" + users + "]";
    out += ",\"connections\":" + std::to_string(count);
    if (count > listed) out += ",\"truncated\":true";
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
