// The rooms plugin's pure rules on untrusted bytes (plugins/rooms/room_rules.h):
// the REST mapping of a method, a path and a body to a request, titles and
// topics, and direct room ids. Input: "<METHOD> <path>\n<body>"; the whole
// input is also a title, and its two halves two user ids.
#include <cjson/cJSON.h>

#include <memory>
#include <string>

#include "fuzz_check.h"
#include "room_rules.h"

using namespace aurora::rooms;

namespace {
// How many times `key` names a member (JSON text may repeat a key).
int count_key(const cJSON *object, std::string_view key) {
    int n = 0;
    for (const cJSON *c = object->child; c; c = c->next) n += c->string == key;
    return n;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    std::string_view in = fuzz_bytes(data, size);
    size_t nl = in.find('\n');
    std::string_view line = in.substr(0, nl), body = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
    size_t sp = line.find(' ');
    std::string_view method = line.substr(0, sp), path = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);

    const char *code = nullptr;
    std::optional<RestRequest> r = rest_request(method, path, body, code);
    if (!r) {
        FUZZ_CHECK(code && (std::string_view(code) == "bad_json" || std::string_view(code) == "not_found"));
    } else {
        // A request the workers know, its frame a JSON object without the
        // client's "type" or "ref", and the path's room in it.
        static const std::string_view kTypes[] = {"rooms",       "room_create", "room_update", "room_invite",
                                                  "room_leave",  "room_remove", "room_role",   "dm_open"};
        bool known = false;
        for (std::string_view t : kTypes) known = known || r->type == t;
        FUZZ_CHECK(known);
        std::unique_ptr<cJSON, decltype(&cJSON_Delete)> frame(cJSON_Parse(r->frame.c_str()), cJSON_Delete);
        FUZZ_CHECK(cJSON_IsObject(frame.get()));
        // Each key once (a body that repeats one is bad_json).
        for (const cJSON *a = frame->child; a; a = a->next) FUZZ_CHECK(count_key(frame.get(), a->string) == 1);
        FUZZ_CHECK(count_key(frame.get(), "type") == 0);
        FUZZ_CHECK(count_key(frame.get(), "ref") == 0);
        if (r->type != "rooms" && r->type != "room_create" && r->type != "dm_open") {
            FUZZ_CHECK(count_key(frame.get(), "room") == 1);
            FUZZ_CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(frame.get(), "room")));
        }
        if (r->type == "room_remove" || r->type == "room_role") {
            FUZZ_CHECK(count_key(frame.get(), "userId") == 1);
            FUZZ_CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(frame.get(), "userId")));
            FUZZ_CHECK(count_key(frame.get(), "username") == 0);
        }
    }

    std::string error;
    if (valid_text(in, 0, 500, error)) {
        for (unsigned char c : in) FUZZ_CHECK(c >= 0x20 && c != 0x7f);
    } else {
        FUZZ_CHECK(!error.empty());
    }
    std::string_view a = in.substr(0, size / 2), b = in.substr(size / 2);
    std::string id = direct_room_id(a, b);
    FUZZ_CHECK(id.size() == 35 && id.starts_with("dm:"));
    FUZZ_CHECK(id == direct_room_id(b, a));
    return 0;
}
