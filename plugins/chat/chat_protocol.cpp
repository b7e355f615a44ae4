#include "chat_protocol.h"

#include <set>
#include <vector>

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
                               std::string_view text, std::string_view attachments, std::string_view ref_json) {
    EnvelopeParts p;
    p.prefix = std::string(kEnvelopeHead);
    p.middle = "\",\"room\":" + quoted(room) + ",\"user\":" + quoted(username) + ",\"userId\":" + quoted(user_id) +
               ",\"text\":" + quoted(text);
    if (!attachments.empty()) p.middle += ",\"attachments\":" + std::string(attachments);
    p.middle += ",\"ts\":";
    p.suffix = ref_json.empty() ? "}" : ",\"ref\":" + std::string(ref_json) + "}";
    return p;
}

std::string message_json(std::string_view id, std::string_view room, std::string_view username,
                         std::string_view user_id, std::string_view text, std::string_view attachments,
                         std::string_view ref_json) {
    EnvelopeParts p = message_envelope(room, username, user_id, text, attachments, ref_json);
    std::string_view ms = id.substr(0, id.find('-'));
    return p.prefix + std::string(id) + p.middle + std::string(ms) + p.suffix;
}

EnvelopeParts change_envelope(std::string_view room, std::string_view username, std::string_view user_id,
                              const Change &c, std::string_view ref_json) {
    EnvelopeParts p;
    const std::string_view type = c.kind == "reaction" ? "reaction" : c.kind == "edit" ? "edit" : "delete";
    p.prefix = "{\"type\":\"" + std::string(type) + "\",\"id\":\"";
    p.middle = "\",\"room\":" + quoted(room) + ",\"target\":" + quoted(c.target) + ",\"user\":" + quoted(username) +
               ",\"userId\":" + quoted(user_id);
    if (type == "edit") p.middle += ",\"text\":" + quoted(c.value);
    if (type == "reaction") p.middle += ",\"emoji\":" + quoted(c.value) + ",\"op\":" + quoted(c.op);
    p.middle += ",\"ts\":";
    p.suffix = ref_json.empty() ? "}" : ",\"ref\":" + std::string(ref_json) + "}";
    return p;
}

std::string change_json(std::string_view id, std::string_view room, std::string_view username,
                        std::string_view user_id, const Change &change) {
    EnvelopeParts p = change_envelope(room, username, user_id, change, {});
    std::string_view ms = id.substr(0, id.find('-'));
    return p.prefix + std::string(id) + p.middle + std::string(ms) + p.suffix;
}

std::string attachments_json(std::string_view field) {
    if (field.empty()) return {};
    plugin::Json in = plugin::parse_json(field);
    const int n = cJSON_IsArray(in.get()) ? cJSON_GetArraySize(in.get()) : 0;
    if (n == 0 || n > static_cast<int>(kMaxAttachments)) return {};
    plugin::Json out(cJSON_CreateArray());
    const cJSON *item = nullptr;
    cJSON_ArrayForEach(item, in.get()) {
        std::optional<plugin::Attachment> d = plugin::read_attachment(item);
        if (!d) return {};
        cJSON *a = cJSON_CreateObject();
        cJSON_AddItemToArray(out.get(), a);
        cJSON_AddStringToObject(a, "id", std::string(d->id).c_str());
        cJSON_AddStringToObject(a, "url", (std::string(kUploadsPath) + std::string(d->id)).c_str());
        cJSON_AddStringToObject(a, "fileType", std::string(d->type).c_str());
        cJSON_AddNumberToObject(a, "size", static_cast<double>(d->size));
        cJSON_AddStringToObject(a, "filename", std::string(d->filename).c_str());
    }
    return plugin::to_string(out.get());
}

std::string_view envelope_id(std::string_view payload) {
    std::string_view rest;
    if (payload.starts_with(kEnvelopeHead)) {
        rest = payload.substr(kEnvelopeHead.size());
    } else {
        for (std::string_view head : {std::string_view("{\"type\":\"edit\",\"id\":\""),
                                      std::string_view("{\"type\":\"delete\",\"id\":\""),
                                      std::string_view("{\"type\":\"reaction\",\"id\":\"")})
            if (payload.starts_with(head)) rest = payload.substr(head.size());
        if (rest.empty()) return {};
    }
    size_t q = rest.find('"');
    return q == std::string_view::npos ? std::string_view() : rest.substr(0, q);
}

namespace {

// The code point at s[i] (valid UTF-8: checked first), advancing i.
char32_t next_code_point(std::string_view s, size_t &i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    int n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    char32_t cp = n == 1 ? c : n == 2 ? c & 0x1F : n == 3 ? c & 0x0F : c & 0x07;
    for (int k = 1; k < n && i + k < s.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    i += static_cast<size_t>(n);
    return cp;
}

// A code point that is an emoji on its own (Extended_Pictographic and
// Emoji_Presentation blocks, broadly: the pictograph planes, the symbol
// and dingbat blocks and the few older symbols emoji keyboards send).
bool pictograph(char32_t c) {
    return (c >= 0x1F000 && c <= 0x1FAFF) || (c >= 0x2600 && c <= 0x27BF) || (c >= 0x2300 && c <= 0x23FF) ||
           (c >= 0x2B00 && c <= 0x2BFF) || (c >= 0x2190 && c <= 0x21FF) || (c >= 0x25A0 && c <= 0x25FF) ||
           c == 0x00A9 || c == 0x00AE || c == 0x203C || c == 0x2049 || c == 0x2122 || c == 0x2139 ||
           c == 0x3030 || c == 0x303D || c == 0x3297 || c == 0x3299 || c == 0x2934 || c == 0x2935;
}
bool regional_indicator(char32_t c) { return c >= 0x1F1E6 && c <= 0x1F1FF; }
bool skin_tone(char32_t c) { return c >= 0x1F3FB && c <= 0x1F3FF; }

}  // namespace

// One emoji: a flag (two regional indicators), a keycap ([0-9#*] FE0F?
// 20E3), or pictographs joined by ZWJ, each optionally followed by FE0F or
// a skin tone, the whole optionally followed by tag characters (subdivision
// flags). Regional indicators are also pictographs in the 1F000 block, so
// flags are checked first.
bool valid_emoji(std::string_view s) {
    if (s.empty() || s.size() > kMaxEmojiBytes || !plugin::valid_utf8(s)) return false;  // the host checked frames; others too
    std::vector<char32_t> cps;
    for (size_t i = 0; i < s.size();) cps.push_back(next_code_point(s, i));
    if (cps.size() == 2 && regional_indicator(cps[0]) && regional_indicator(cps[1])) return true;
    const char32_t first = cps[0];
    if ((first == '#' || first == '*' || (first >= '0' && first <= '9'))) {
        return (cps.size() == 2 && cps[1] == 0x20E3) || (cps.size() == 3 && cps[1] == 0xFE0F && cps[2] == 0x20E3);
    }
    size_t i = 0;
    for (;;) {
        if (i >= cps.size() || !pictograph(cps[i]) || regional_indicator(cps[i]) || skin_tone(cps[i])) return false;
        ++i;
        if (i < cps.size() && (cps[i] == 0xFE0F || skin_tone(cps[i]))) ++i;
        if (i < cps.size() && cps[i] == 0x200D) {
            ++i;
            continue;  // a ZWJ is followed by another pictograph
        }
        break;
    }
    size_t tags = 0;
    while (i < cps.size() && cps[i] >= 0xE0020 && cps[i] <= 0xE007E) ++i, ++tags;
    if (tags && (i >= cps.size() || cps[i] != 0xE007F)) return false;  // tags end with CANCEL TAG
    if (tags) ++i;
    return i == cps.size();
}

std::string resumed_json(std::string_view room, size_t count, bool complete, std::string_view last_id,
                         std::string_view ref_json) {
    std::string out = "{\"type\":\"resumed\",\"room\":" + quoted(room) + ",\"count\":" + std::to_string(count) +
                      ",\"complete\":" + (complete ? "true" : "false") + ",\"last_id\":" + quoted(last_id);
    if (!ref_json.empty()) out += ",\"ref\":" + std::string(ref_json);
    return out + "}";
}

std::string receipt_json(std::string_view user_id, std::string_view username, std::string_view id) {
    return "{\"userId\":" + quoted(user_id) + ",\"user\":" + quoted(username) + ",\"id\":" + quoted(id) + "}";
}

std::string receipts_head(std::string_view room) {
    return "{\"type\":\"receipts\",\"room\":" + quoted(room) + ",\"reads\":[";
}

std::string receipts_snapshot_json(std::string_view room, std::span<const std::string_view> user_ids,
                                   std::span<const std::string_view> values, long long total,
                                   std::string_view ref_json) {
    std::string out = receipts_head(room);
    size_t listed = 0;
    for (size_t i = 0; i < user_ids.size() && i < values.size(); ++i) {
        size_t tab = values[i].find('\t');
        if (tab == std::string_view::npos) continue;  // gone meanwhile (HMGET nil): skipped
        out += (listed++ ? "," : "") + receipt_json(user_ids[i], values[i].substr(tab + 1), values[i].substr(0, tab));
    }
    out += "],\"readers\":" + std::to_string(total < 0 ? static_cast<long long>(listed) : total);
    if (total > static_cast<long long>(listed)) out += ",\"truncated\":true";
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
