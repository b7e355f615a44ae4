#include "server_requests.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "chat_protocol.h"

namespace aurora::chat {

namespace {

// Sets the refusal; returns what the parsers return for one.
std::nullopt_t refuse(Refusal &why, std::string code, std::string text) {
    why = Refusal{std::move(code), std::move(text)};
    return std::nullopt;
}

// Every field of `body` is one of `known`.
bool only(const cJSON *body, std::initializer_list<std::string_view> known, Refusal &why) {
    for (const cJSON *f = body->child; f; f = f->next) {
        if (std::find(known.begin(), known.end(), std::string_view(f->string)) == known.end()) {
            refuse(why, "bad_field", "unknown field '" + std::string(f->string).substr(0, 64) + "'");
            return false;
        }
    }
    return true;
}

// A string field: nullptr when absent, `bad` when present and not a string.
const char *string_field(const cJSON *body, const char *name, bool &bad) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(body, name);
    if (!f) return nullptr;
    if (!cJSON_IsString(f)) {
        bad = true;
        return nullptr;
    }
    return f->valuestring;
}

constexpr const char *kBadRoom = "'room' must be a room name: 1-64 characters of A-Z a-z 0-9 _ . : -";
constexpr const char *kBadUser = "'user_id' must be 1-128 characters without control characters, not anon-...";

}  // namespace

bool valid_field(std::string_view s, size_t min, size_t max) {
    if (!plugin::valid_utf8(s)) return false;
    size_t n = 0;
    for (size_t i = 0; i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x20 || c == 0x7f) return false;
        if (c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) <= 0x9f) return false;  // U+0080-U+009F
        if ((c & 0xc0) != 0x80) ++n;
    }
    return n >= min && n <= max;
}

bool valid_user_id(std::string_view s) { return valid_field(s, 1, 128) && !s.starts_with("anon-"); }

std::string close_reason(std::string text) {
    if (text.size() <= kMaxCloseReason) return text;
    size_t n = kMaxCloseReason;
    while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xc0) == 0x80) --n;
    text.resize(n);
    return text;
}

std::optional<PublishRequest> parse_publish(const cJSON *body, bool broadcast, size_t max_text_chars, Refusal &why) {
    if (!only(body, {broadcast ? "rooms" : "room", "text", "user_id", "username", "ref"}, why)) return std::nullopt;
    PublishRequest r;
    if (broadcast) {
        const cJSON *rooms = cJSON_GetObjectItemCaseSensitive(body, "rooms");
        if (!cJSON_IsArray(rooms)) return refuse(why, "bad_field", "'rooms' must be an array of room names");
        for (const cJSON *room = rooms->child; room; room = room->next) {
            if (!cJSON_IsString(room) || !valid_room(room->valuestring))
                return refuse(why, "bad_room", "every room must be a room name: 1-64 characters of A-Z a-z 0-9 _ . : -");
            if (std::find(r.rooms.begin(), r.rooms.end(), room->valuestring) != r.rooms.end())
                return refuse(why, "bad_field", "a room is named twice in 'rooms'");
            if (r.rooms.size() == kMaxBroadcastRooms)
                return refuse(why, "bad_field", "at most " + std::to_string(kMaxBroadcastRooms) + " rooms per broadcast");
            r.rooms.emplace_back(room->valuestring);
        }
        if (r.rooms.empty()) return refuse(why, "bad_field", "'rooms' is empty");
    } else {
        const cJSON *room = cJSON_GetObjectItemCaseSensitive(body, "room");
        if (!cJSON_IsString(room) || !valid_room(room->valuestring)) return refuse(why, "bad_room", kBadRoom);
        r.rooms.emplace_back(room->valuestring);
    }
    bool bad = false;
    const char *uid = string_field(body, "user_id", bad);
    const char *name = string_field(body, "username", bad);
    if (bad) return refuse(why, "bad_field", "'user_id' and 'username' must be strings");
    if (!uid && name) return refuse(why, "bad_field", "'username' needs 'user_id'");
    if (uid) {
        if (!valid_user_id(uid)) return refuse(why, "bad_user", kBadUser);
        r.user_id = uid;
        r.username = name ? name : uid;
        if (!valid_field(r.username, 1, 128))
            return refuse(why, "bad_field", "'username' must be 1-128 characters without control characters");
    }
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(body, "text");
    if (!cJSON_IsString(text)) return refuse(why, "bad_field", "'text' must be a string");
    if (!plugin::valid_utf8(text->valuestring)) return refuse(why, "bad_field", "'text' must be UTF-8");
    const size_t n = code_points(text->valuestring);
    if (n == 0) return refuse(why, "empty", "'text' is empty");
    if (n > max_text_chars)
        return refuse(why, "too_long", "'text' is longer than " + std::to_string(max_text_chars) + " characters");
    r.text = text->valuestring;
    const char *ref = string_field(body, "ref", bad);
    if (bad || (ref && !valid_field(ref, 1, 128)))
        return refuse(why, "bad_field", "'ref' must be a string of 1-128 characters without control characters");
    r.ref = ref ? ref : "";
    return r;
}

std::optional<TargetRequest> parse_target(const cJSON *body, TargetKind kind, Refusal &why) {
    bool fields_ok = kind == TargetKind::Unban        ? only(body, {"user_id"}, why)
                     : kind == TargetKind::Disconnect ? only(body, {"user_id", "reason"}, why)
                                                      : only(body, {"user_id", "reason", "duration_s"}, why);
    if (!fields_ok) return std::nullopt;
    TargetRequest t;
    bool bad = false;
    const char *uid = string_field(body, "user_id", bad);
    if (bad || !uid || !valid_user_id(uid)) return refuse(why, "bad_user", kBadUser);
    t.user_id = uid;
    const char *reason = string_field(body, "reason", bad);
    if (bad || (reason && !valid_field(reason, 0, kMaxReason)))
        return refuse(why, "bad_field", "'reason' must be at most " + std::to_string(kMaxReason) +
                                       " characters without control characters");
    t.reason = reason ? reason : "";
    if (kind == TargetKind::Ban) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(body, "duration_s");
        if (!cJSON_IsNumber(d) || !std::isfinite(d->valuedouble) || d->valuedouble != std::floor(d->valuedouble) ||
            d->valuedouble < 1 || d->valuedouble > static_cast<double>(kMaxBanSeconds))
            return refuse(why, "bad_field", "'duration_s' must be a whole number of seconds, 1 to " +
                                           std::to_string(kMaxBanSeconds));
        t.duration_s = static_cast<int64_t>(d->valuedouble);
    }
    return t;
}

}  // namespace aurora::chat
