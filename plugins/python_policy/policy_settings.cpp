#include "policy_settings.h"

#include <cjson/cJSON.h>

#include <memory>

namespace aurora::policy {

namespace {

using Json = std::unique_ptr<cJSON, decltype(&cJSON_Delete)>;

enum class Type { String, StringList, Object, Choice };

struct Setting {
    const char *key;
    Type type;
    bool required;
    const char *doc;
};

// The table: every key the config may hold.
const Setting kSettings[] = {
    {"module", Type::String, true, "name of the policy module (import name, e.g. \"profanity_policy\")"},
    {"path", Type::StringList, false, "directories put in front of sys.path (relative to the working directory)"},
    {"fallback", Type::Choice, false, "\"allow\" or \"drop\": the verdict when the policy raises"},
    {"options", Type::Object, false, "object given to the module's configure(options), if it defines one"},
    {"types", Type::StringList, false, "message types passed to on_message (default [\"message\"])"},
    {"python_home", Type::String, false, "PYTHONHOME of the embedded interpreter (default: Python's own)"},
};

bool string_list(const cJSON *v, std::vector<std::string> &out) {
    if (cJSON_IsString(v)) {
        out.emplace_back(v->valuestring);
        return true;
    }
    if (!cJSON_IsArray(v)) return false;
    const cJSON *item;
    cJSON_ArrayForEach(item, v) {
        if (!cJSON_IsString(item)) return false;
        out.emplace_back(item->valuestring);
    }
    return true;
}

}  // namespace

bool parse_settings(const std::string &json, Settings &out, std::string &error) {
    Json root(cJSON_ParseWithLength(json.data(), json.size()), cJSON_Delete);
    if (!cJSON_IsObject(root.get())) {
        error = "config: expected a JSON object";
        return false;
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, root.get()) {
        bool known = false;
        for (const auto &s : kSettings) known = known || std::string(s.key) == item->string;
        if (!known) {
            error = std::string("config: unknown setting \"") + item->string +
                    "\" (known: module, path, fallback, options, types, python_home)";
            return false;
        }
    }
    for (const auto &s : kSettings) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root.get(), s.key);
        if (!v) {
            if (s.required) {
                error = std::string("config: \"") + s.key + "\" is required: " + s.doc;
                return false;
            }
            continue;
        }
        std::string key = s.key;
        bool ok = true;
        switch (s.type) {
        case Type::String:
            ok = cJSON_IsString(v) && (key != "module" || v->valuestring[0] != '\0');
            if (ok) (key == "module" ? out.module : out.python_home) = v->valuestring;
            break;
        case Type::StringList: {
            std::vector<std::string> list;
            ok = string_list(v, list);
            if (ok && key == "path") out.path = list;
            if (ok && key == "types") out.types = std::set<std::string>(list.begin(), list.end());
            break;
        }
        case Type::Object:
            ok = cJSON_IsObject(v);
            if (ok) {
                char *text = cJSON_PrintUnformatted(v);
                out.options_json = text ? text : "{}";
                cJSON_free(text);
            }
            break;
        case Type::Choice:
            ok = cJSON_IsString(v) && (std::string(v->valuestring) == "allow" || std::string(v->valuestring) == "drop");
            if (ok) out.fallback_drop = std::string(v->valuestring) == "drop";
            break;
        }
        if (!ok) {
            error = std::string("config: bad value for \"") + s.key + "\": " + s.doc;
            return false;
        }
    }
    return true;
}

}  // namespace aurora::policy
