// The room model's rules (docs/rooms.md), pure functions: who may do what,
// what a title or topic may hold, the id of a direct room. No I/O, so the
// permission table is tested whole (tests/plugins/rooms/room_rules_test.cpp).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace aurora::rooms {

enum class RoomType { Public, Private, Direct };
enum class Role { None, Member, Admin, Owner };  // None: not a member

std::optional<RoomType> parse_type(std::string_view s);
std::optional<Role> parse_role(std::string_view s);  // "member", "admin", "owner"
const char *name_of(RoomType t);
const char *name_of(Role r);

enum class Action {
    Read,        // join, resume, history, presence: any member (public rooms: anyone)
    Invite,      // add a member: admins and the owner
    Remove,      // remove another member: admins remove members, the owner anyone but itself
    SetRole,     // make a member admin or back: the owner only
    Update,      // title, topic: admins and the owner
    Archive,     // the owner only
    Leave,       // give up membership: anyone but the owner (it would leave the room ownerless)
};

// May `actor` (its role in the room) do `action` to a member whose role is
// `target` (Role::None when the action has no target)? Direct rooms have
// two members and no administration: only Read and Leave.
bool allowed(RoomType type, Action action, Role actor, Role target = Role::None);

// A title (1-100 characters) or topic (0-500): valid UTF-8 is the host's
// check; here no control characters (C0, DEL, C1) and the length in code
// points. The error says which rule, for the client.
bool valid_text(std::string_view text, size_t min_chars, size_t max_chars, std::string &error);

// One direct room per pair of users, whatever the order of the two ids:
// "dm:" + 32 hex digits of SHA-256(lo, NUL, hi). A valid room name, the
// same on every replica.
std::string direct_room_id(std::string_view user_a, std::string_view user_b);

// REST (docs/rooms.md, "REST"): a method and a path under /api/rooms or
// /api/dms, and the body, as the WebSocket request they stand for: its type
// and its frame (JSON text: the body's object, "type" and "ref" dropped, the
// path's room and userId set). nullopt with `code`: "bad_json" (the body is
// not a JSON object) or "not_found" (no request has that method and path).
struct RestRequest {
    std::string type, frame;
};
std::optional<RestRequest> rest_request(std::string_view method, std::string_view path, std::string_view body,
                                        const char *&code);

}  // namespace aurora::rooms
