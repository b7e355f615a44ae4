#include "settings.h"

#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "json.h"

namespace aurora::plugin {

namespace {

const char *type_name(Setting::Type t) {
    switch (t) {
    case Setting::String: return "a string";
    case Setting::Int: return "an integer";
    case Setting::Bool: return "true or false";
    case Setting::Number: return "a number";
    default: return "an array of strings";
    }
}

}  // namespace

std::optional<Settings> Settings::parse(aurora_str config_json, std::span<const Setting> table, std::string &error) {
    Json root = parse_json(config_json.len ? config_json : aurora_str{"{}", 2});
    if (!root || !cJSON_IsObject(root.get())) {
        error = "the plugin config must be a JSON object";
        return std::nullopt;
    }
    for (const cJSON *c = root->child; c; c = c->next) {
        bool known = false;
        for (const Setting &s : table) known = known || std::string(s.name) == c->string;
        if (!known) {
            std::string names;
            for (const Setting &s : table) names += (names.empty() ? "" : ", ") + std::string(s.name);
            error = std::string("unknown setting \"") + c->string + "\" (known: " + names + ")";
            return std::nullopt;
        }
    }
    Settings out;
    for (const Setting &s : table) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root.get(), s.name);
        Json dflt;
        if (!v) {
            if (!s.default_value) {
                error = std::string("setting \"") + s.name + "\" is required";
                return std::nullopt;
            }
            dflt = parse_json(std::string_view(s.default_value));
            v = dflt.get();
        }
        bool ok = false;
        switch (s.type) {
        case Setting::String:
            if ((ok = cJSON_IsString(v))) out.strings_[s.name] = v->valuestring;
            break;
        case Setting::Int:
            // Whole, and within int64_t whatever the table's bounds: integer() converts it.
            ok = cJSON_IsNumber(v) && v->valuedouble == std::floor(v->valuedouble) && v->valuedouble >= -0x1p63 &&
                 v->valuedouble < 0x1p63;
            if (ok) out.numbers_[s.name] = v->valuedouble;
            break;
        case Setting::Number:
            if ((ok = cJSON_IsNumber(v))) out.numbers_[s.name] = v->valuedouble;
            break;
        case Setting::Bool:
            if ((ok = cJSON_IsBool(v))) out.numbers_[s.name] = cJSON_IsTrue(v) ? 1 : 0;
            break;
        case Setting::StringList:
            ok = cJSON_IsArray(v);
            for (const cJSON *e = ok ? v->child : nullptr; e; e = e->next) {
                if (!cJSON_IsString(e)) {
                    ok = false;
                    break;
                }
                out.lists_[s.name].push_back(e->valuestring);
            }
            if (ok) out.lists_[s.name];  // present even when empty
            break;
        }
        if (!ok) {
            error = std::string("setting \"") + s.name + "\" must be " + type_name(s.type);
            return std::nullopt;
        }
        if ((s.type == Setting::Int || s.type == Setting::Number) &&
            (out.numbers_[s.name] < s.min || out.numbers_[s.name] > s.max)) {
            char buf[160];
            std::snprintf(buf, sizeof buf, "setting \"%s\" must be between %g and %g", s.name, s.min, s.max);
            error = buf;
            return std::nullopt;
        }
    }
    return out;
}

const std::string &Settings::string(const char *name) const { return strings_.at(name); }
int64_t Settings::integer(const char *name) const { return static_cast<int64_t>(numbers_.at(name)); }
double Settings::number(const char *name) const { return numbers_.at(name); }
bool Settings::boolean(const char *name) const { return numbers_.at(name) != 0; }
const std::vector<std::string> &Settings::list(const char *name) const { return lists_.at(name); }

std::string Settings::markdown(std::span<const Setting> table) {
    std::string out = "| setting | type | default | meaning |\n|---|---|---|---|\n";
    for (const Setting &s : table) {
        out += std::string("| `") + s.name + "` | " + type_name(s.type) + " | " +
               (s.default_value ? std::string("`") + s.default_value + "`" : "required") + " | " + s.doc + " |\n";
    }
    return out;
}

}  // namespace aurora::plugin
