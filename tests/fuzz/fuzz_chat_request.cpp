// The chat plugin's reading of client frames (plugins/chat/chat_protocol.h
// and StreamId from plugins/common/stream_id.h). The input is a client frame
// (JSON text, as the host passes it on); the harness reads its fields the way
// ChatPlugin::handle does (that function needs a running plugin, so its field
// reading is mirrored here: room, since, id, text, ref) and runs every
// validator and every JSON builder on what it found. Invariants: what
// valid_room accepts is 1-64 of [A-Za-z0-9_.:-]; a parsed stream id prints
// back to an id that parses to itself; what the builders write is one JSON
// object that gives back the room, text and ref it was built from, and
// envelope_id finds the id again. Then the raw bytes go through StreamId and
// envelope_id, and a presence snapshot is built from members cut from them.
#include <cmath>
#include <string>
#include <vector>

#include "chat_protocol.h"
#include "fuzz_check.h"
#include "json.h"
#include "stream_id.h"

using namespace aurora::chat;
using aurora::plugin::Json;
using aurora::plugin::parse_json;
using aurora::plugin::StreamId;

namespace {

bool room_chars(std::string_view r) {
    for (char c : r)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == ':' || c == '-'))
            return false;
    return true;
}

void check_stream_id(std::string_view s) {
    std::optional<StreamId> id = StreamId::parse(s);
    if (!id) return;
    std::optional<StreamId> again = StreamId::parse(id->str());
    FUZZ_CHECK(again && *again == *id);
    FUZZ_CHECK(s.find_first_not_of("0123456789-") == std::string_view::npos);
}

// A builder's output: one JSON object whose string member `key` is `want`
// (valid UTF-8, as the host lets through), or, for bytes that are not UTF-8
// (only from Redis or another plugin), `want` with its bad bytes as U+FFFD.
Json object_with(const std::string &json, const char *key, std::string_view want) {
    constexpr size_t npos = std::string_view::npos;
    Json j = parse_json(json);
    FUZZ_CHECK(j && cJSON_IsObject(j.get()));
    if (key) {
        const char *got = aurora::plugin::get_string(j.get(), key);
        FUZZ_CHECK(got);
        if (aurora::plugin::valid_utf8(want)) FUZZ_CHECK(got == want);
        else FUZZ_CHECK(aurora::plugin::valid_utf8(got) && std::string_view(got).find("\xEF\xBF\xBD") != npos);
    }
    return j;
}

void check_ref(const Json &j, const std::string &ref_json) {
    if (ref_json.empty()) return;
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(j.get(), "ref");
    FUZZ_CHECK(r && aurora::plugin::to_string(r) == ref_json);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    std::string_view in = fuzz_bytes(data, size);

    // The raw bytes as ids, envelopes and presence members (what Redis hands back).
    check_stream_id(in);
    (void)valid_emoji(in);  // bytes that may not be UTF-8: must not read past them
    std::string_view eid = envelope_id(in);
    FUZZ_CHECK(eid.find('"') == std::string_view::npos && eid.size() <= in.size());
    std::vector<std::string_view> members;
    for (size_t at = 0; at < in.size() && members.size() < 64;) {
        size_t nl = in.find('\n', at);
        members.push_back(in.substr(at, nl == std::string_view::npos ? std::string_view::npos : nl - at));
        if (nl == std::string_view::npos) break;
        at = nl + 1;
    }
    (void)presence_snapshot_json("general", members, -1, {});

    // The frame, read as ChatPlugin::handle reads it.
    Json frame = parse_json(in);
    if (!frame || !cJSON_IsObject(frame.get())) return 0;
    std::string ref_json;
    if (const cJSON *ref = cJSON_GetObjectItemCaseSensitive(frame.get(), "ref")) {
        // The host refuses any other "ref" (frame_check.cpp).
        if (!cJSON_IsString(ref) && !(cJSON_IsNumber(ref) && std::isfinite(ref->valuedouble))) return 0;
        ref_json = aurora::plugin::to_string(ref);
    }
    std::string room = "general";
    if (const cJSON *r = cJSON_GetObjectItemCaseSensitive(frame.get(), "room")) {
        if (!cJSON_IsString(r)) return 0;
        room = r->valuestring;
        if (!valid_room(room)) return 0;
        FUZZ_CHECK(!room.empty() && room.size() <= 64 && room_chars(room));
    }
    std::string id = "1700000000000-0";
    for (const char *key : {"since", "id", "before"}) {
        if (const char *v = aurora::plugin::get_string(frame.get(), key)) {
            check_stream_id(v);
            if (StreamId::parse(v) && std::string_view(v).find('-') != std::string_view::npos) id = v;
        }
    }
    std::string text;
    if (const char *t = aurora::plugin::get_string(frame.get(), "text")) {
        text = t;
        FUZZ_CHECK(code_points(text) <= text.size());
    }
    const std::string user = text.substr(0, 32), user_id = room;

    // Reactions: what valid_emoji accepts is short, valid UTF-8 with no
    // ASCII but a keycap's base; a change's event gives back what it was
    // built from, and envelope_id finds its id.
    for (const char *e : {aurora::plugin::get_string(frame.get(), "emoji"), text.c_str()}) {
        if (!e || !valid_emoji(e)) continue;
        std::string_view emoji(e);
        FUZZ_CHECK(!emoji.empty() && emoji.size() <= kMaxEmojiBytes && aurora::plugin::valid_utf8(emoji));
        FUZZ_CHECK(emoji.find_first_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ \"\\.") ==
                   std::string_view::npos);
        const std::string reaction = change_json(id, room, user, user_id, Change{"reaction", id, emoji, "add"});
        (void)object_with(reaction, "emoji", emoji);
        FUZZ_CHECK(envelope_id(reaction) == id);
    }
    const std::string edit = change_json(id, room, user, user_id, Change{"edit", id, text, {}});
    (void)object_with(edit, "text", text);
    (void)object_with(edit, "target", id);
    FUZZ_CHECK(envelope_id(edit) == id);

    // Any field an entry may hold comes back as a JSON array of objects, or not at all.
    const std::string attached = attachments_json(text);
    if (!attached.empty()) {
        aurora::plugin::Json a = aurora::plugin::parse_json(attached);
        FUZZ_CHECK(cJSON_IsArray(a.get()) && cJSON_GetArraySize(a.get()) > 0);
        const std::string with = message_json(id, room, user, user_id, text, attached, ref_json);
        aurora::plugin::Json m = aurora::plugin::parse_json(with);
        FUZZ_CHECK(m && cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(m.get(), "attachments")));
    }
    const std::string message = message_json(id, room, user, user_id, text, {}, ref_json);
    check_ref(object_with(message, "text", text), ref_json);
    (void)object_with(message, "room", room);
    (void)object_with(message, "user", user);
    FUZZ_CHECK(envelope_id(message) == id);
    check_ref(object_with(resumed_json(room, text.size(), true, id, ref_json), "last_id", id), ref_json);
    (void)object_with(presence_event_json(room, true, user, user_id), "user", user);
    check_ref(object_with(ack_json(ref_json, "\"room\":" + quoted(room)), "room", room), ref_json);

    // A snapshot of members this plugin wrote lists each user once, as written.
    std::vector<std::string> written;
    for (const std::string &u : {user, text, room}) written.push_back(presence_member_json(u, u + "!", "c1"));
    written.push_back(written.front());
    std::vector<std::string_view> views(written.begin(), written.end());
    Json snap = object_with(presence_snapshot_json(room, views, 10, ref_json), "room", room);
    check_ref(snap, ref_json);
    const cJSON *users = cJSON_GetObjectItemCaseSensitive(snap.get(), "users");
    FUZZ_CHECK(cJSON_IsArray(users) && cJSON_GetArraySize(users) >= 1 && cJSON_GetArraySize(users) <= 3);
    return 0;
}
