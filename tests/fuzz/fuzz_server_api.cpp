// The server API's reading of what a backend sends (plugins/chat/
// server_requests.h, server_keys.h). The first byte picks what the rest is:
// a key set (a keys file), a request body read as every route reads it, or
// a close reason. Invariants: a refusal has a code and
// a text, and never quotes a key; what is accepted keeps every rule (room
// names, user ids, text length, reason length, ban durations); a parsed key
// set is 1-256 keys with unique names; a close reason fits a close frame, is
// valid UTF-8 and a prefix of what it was cut from.
#include <set>
#include <string>

#include "chat_protocol.h"
#include "fuzz_check.h"
#include "json.h"
#include "server_keys.h"
#include "server_requests.h"

using namespace aurora::chat;

namespace {

void check_publish(const PublishRequest &r, bool broadcast) {
    FUZZ_CHECK(!r.rooms.empty() && r.rooms.size() <= (broadcast ? kMaxBroadcastRooms : 1));
    std::set<std::string> seen;
    for (const std::string &room : r.rooms) {
        FUZZ_CHECK(valid_room(room));
        FUZZ_CHECK(seen.insert(room).second);
    }
    const size_t n = code_points(r.text);
    FUZZ_CHECK(n >= 1 && n <= 4000 && aurora::plugin::valid_utf8(r.text));
    FUZZ_CHECK(r.user_id.empty() == r.username.empty());
    if (!r.user_id.empty()) FUZZ_CHECK(valid_user_id(r.user_id) && valid_field(r.username, 1, 128));
    if (!r.ref.empty()) FUZZ_CHECK(valid_field(r.ref, 1, 128));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    const uint8_t mode = data[0] % 3;
    std::string_view rest = fuzz_bytes(data + 1, size - 1);
    if (mode == 0) {
        std::string err;
        std::optional<ServerKeys> keys = ServerKeys::parse(rest, "fuzz", err);
        if (!keys) {
            FUZZ_CHECK(!err.empty());
            return 0;
        }
        FUZZ_CHECK(keys->size() >= 1 && keys->size() <= ServerKeys::kMaxKeys);
        FUZZ_CHECK(keys->find("") == nullptr);
        return 0;
    }
    if (mode == 1) {
        aurora::plugin::Json body = aurora::plugin::parse_json(rest);
        if (!body || !cJSON_IsObject(body.get()) || aurora::plugin::has_duplicate_key(body.get())) return 0;
        for (bool broadcast : {false, true}) {
            Refusal why;
            std::optional<PublishRequest> r = parse_publish(body.get(), broadcast, 4000, why);
            if (r)
                check_publish(*r, broadcast);
            else
                FUZZ_CHECK(!why.code.empty() && !why.text.empty());
        }
        for (TargetKind kind : {TargetKind::Disconnect, TargetKind::Ban, TargetKind::Unban}) {
            Refusal why;
            std::optional<TargetRequest> t = parse_target(body.get(), kind, why);
            if (!t) {
                FUZZ_CHECK(!why.code.empty() && !why.text.empty());
                continue;
            }
            FUZZ_CHECK(valid_user_id(t->user_id) && valid_field(t->reason, 0, kMaxReason));
            FUZZ_CHECK(kind == TargetKind::Ban ? t->duration_s >= 1 && t->duration_s <= kMaxBanSeconds
                                               : t->duration_s == 0);
            if (kind == TargetKind::Unban) FUZZ_CHECK(t->reason.empty());
        }
        return 0;
    }
    if (aurora::plugin::valid_utf8(rest)) {
        std::string cut = close_reason(std::string(rest));
        FUZZ_CHECK(cut.size() <= kMaxCloseReason && aurora::plugin::valid_utf8(cut) && rest.starts_with(cut));
        FUZZ_CHECK(rest.size() <= kMaxCloseReason ? cut.size() == rest.size() : cut.size() + 3 >= kMaxCloseReason);
    }
    return 0;
}
