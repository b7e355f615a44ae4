#include "room_rules.h"

#include <cjson/cJSON.h>
#include <openssl/sha.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "json.h"

namespace aurora::rooms {

std::optional<RoomType> parse_type(std::string_view s) {
    if (s == "public") return RoomType::Public;
    if (s == "private") return RoomType::Private;
    if (s == "direct") return RoomType::Direct;
    return std::nullopt;
}

std::optional<Role> parse_role(std::string_view s) {
    if (s == "member") return Role::Member;
    if (s == "admin") return Role::Admin;
    if (s == "owner") return Role::Owner;
    return std::nullopt;
}

const char *name_of(RoomType t) {
    switch (t) {
    case RoomType::Public: return "public";
    case RoomType::Private: return "private";
    case RoomType::Direct: return "direct";
    }
    return "public";
}

const char *name_of(Role r) {
    switch (r) {
    case Role::None: return "none";
    case Role::Member: return "member";
    case Role::Admin: return "admin";
    case Role::Owner: return "owner";
    }
    return "none";
}

bool allowed(RoomType type, Action action, Role actor, Role target) {
    if (action == Action::Read) return type == RoomType::Public || actor != Role::None;
    if (actor == Role::None) return false;
    if (action == Action::Leave) return actor != Role::Owner;
    if (type == RoomType::Direct) return false;
    switch (action) {
    case Action::Invite:
    case Action::Update: return actor >= Role::Admin;
    case Action::Remove: return target != Role::None && target < actor && actor >= Role::Admin;
    case Action::SetRole: return actor == Role::Owner && target != Role::None && target != Role::Owner;
    case Action::Archive: return actor == Role::Owner;
    case Action::Read:
    case Action::Leave: break;
    }
    return false;
}

bool valid_text(std::string_view text, size_t min_chars, size_t max_chars, std::string &error) {
    size_t chars = 0;
    for (size_t i = 0; i < text.size(); ++i) {
        auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x20 || c == 0x7f) {
            error = "control characters are not allowed";
            return false;
        }
        if (c == 0xc2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) < 0xa0) {  // U+0080-U+009F
            error = "control characters are not allowed";
            return false;
        }
        if ((c & 0xc0) != 0x80) ++chars;
    }
    if (chars < min_chars || chars > max_chars) {
        error = "must be " + std::to_string(min_chars) + "-" + std::to_string(max_chars) + " characters";
        return false;
    }
    return true;
}

std::string direct_room_id(std::string_view user_a, std::string_view user_b) {
    std::string_view lo = std::min(user_a, user_b), hi = std::max(user_a, user_b);
    std::string input;
    input.reserve(lo.size() + hi.size() + 1);
    input.append(lo).push_back('\0');
    input.append(hi);
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char *>(input.data()), input.size(), digest);
    static const char kHex[] = "0123456789abcdef";
    std::string id = "dm:";
    for (int i = 0; i < 16; ++i) {
        id.push_back(kHex[digest[i] >> 4]);
        id.push_back(kHex[digest[i] & 15]);
    }
    return id;
}

std::optional<RestRequest> rest_request(std::string_view method, std::string_view path, std::string_view body,
                                        const char *&code) {
    using Json = std::unique_ptr<cJSON, decltype(&cJSON_Delete)>;
    Json frame(body.empty() ? cJSON_CreateObject() : cJSON_ParseWithLength(body.data(), body.size()), cJSON_Delete);
    // A key twice is refused, as the host refuses it in a frame: a copy left
    // behind would speak for the route (a fuzzer found that).
    if (!cJSON_IsObject(frame.get()) || plugin::has_duplicate_key(frame.get())) {
        code = "bad_json";
        return std::nullopt;
    }
    auto drop = [&](const char *key) { cJSON_DeleteItemFromObjectCaseSensitive(frame.get(), key); };
    drop("type");
    drop("ref");
    // /api/rooms[/{room}[/members[/{userId}] | /leave]], /api/dms
    std::vector<std::string_view> parts;
    for (size_t at = 1; at <= path.size();) {
        size_t next = path.find('/', at);
        if (next == std::string_view::npos) next = path.size();
        parts.push_back(path.substr(at, next - at));
        at = next + 1;
    }
    auto set = [&](const char *key, std::string_view value) {
        drop(key);
        cJSON_AddItemToObject(frame.get(), key, cJSON_CreateString(std::string(value).c_str()));
    };
    RestRequest out;
    const size_t n = parts.size();
    if (!path.starts_with("/") || n < 2 || parts[0] != "api") {
    } else if (n == 2 && parts[1] == "dms" && method == "POST") {
        out.type = "dm_open";
    } else if (n == 2 && parts[1] == "rooms") {
        out.type = method == "GET" ? "rooms" : method == "POST" ? "room_create" : "";
    } else if (n >= 3 && parts[1] == "rooms" && !parts[2].empty()) {
        set("room", parts[2]);
        if (n == 3 && method == "PATCH") out.type = "room_update";
        else if (n == 4 && parts[3] == "members" && method == "POST") out.type = "room_invite";
        else if (n == 4 && parts[3] == "leave" && method == "POST") out.type = "room_leave";
        else if (n == 5 && parts[3] == "members" && !parts[4].empty()) {
            drop("username");
            set("userId", parts[4]);
            out.type = method == "DELETE" ? "room_remove" : method == "PATCH" ? "room_role" : "";
        }
    }
    if (out.type.empty()) {
        code = "not_found";
        return std::nullopt;
    }
    char *text = cJSON_PrintUnformatted(frame.get());
    if (!text) {
        code = "bad_json";
        return std::nullopt;
    }
    out.frame = text;
    cJSON_free(text);
    return out;
}

}  // namespace aurora::rooms
