// A plugin's settings, declared once as a table (name, type, default, doc,
// and the field of the plugin's settings struct it fills): the same table
// validates the config at init (unknown keys, wrong types and values out of
// bounds are errors), fills the struct, and generates the settings table of
// the plugin's README.
//
//     struct Config { int64_t batch = 0; std::string stream; };
//     static const Field<Config> kFields[] = {
//         {{"batch", Setting::Int, "50", "entries read per XREADGROUP", 1, 10000}, &Config::batch},
//         {{"stream", Setting::String, "\"chat:messages\"", "the stream to consume"}, &Config::stream},
//     };
//     std::string err;
//     std::optional<Config> cfg = parse_settings(host->config_json(self), kFields, err);
//     if (!cfg) { host->log_msg(self, AURORA_LOG_ERROR, "config: %s", err.c_str()); return AURORA_ERR; }
//
// Settings::parse is the same without a struct (read by name).
#pragma once

#include <aurora/common.h>

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

namespace aurora::plugin {

struct Setting {
    enum Type { String, Int, Bool, Number, StringList };
    const char *name;
    Type type;
    const char *default_value;  // JSON text of the default ("50", "\"x\"", "[]"); nullptr = required
    const char *doc;
    double min = -1e300;  // Int/Number bounds
    double max = 1e300;
};

class Settings {
public:
    static std::optional<Settings> parse(aurora_str config_json, std::span<const Setting> table, std::string &error);

    const std::string &string(const char *name) const;
    int64_t integer(const char *name) const;
    double number(const char *name) const;
    bool boolean(const char *name) const;
    const std::vector<std::string> &list(const char *name) const;

    // The table as a Markdown table (for READMEs and docs).
    static std::string markdown(std::span<const Setting> table);

private:
    std::map<std::string, std::string> strings_;
    std::map<std::string, double> numbers_;
    std::map<std::string, std::vector<std::string>> lists_;
};

// One setting and the member of the settings struct S it fills. The member's
// type follows the setting's: String -> std::string, Int -> int, int64_t or
// size_t, Bool -> bool, Number -> double, StringList -> vector<string>.
template <typename S>
struct Field {
    Setting setting;
    std::variant<std::string S::*, int S::*, int64_t S::*, size_t S::*, bool S::*, double S::*,
                 std::vector<std::string> S::*>
        member;
};

// The settings table of `fields` (for Settings::markdown and parse).
template <typename S>
std::vector<Setting> settings_of(std::span<const Field<S>> fields) {
    std::vector<Setting> out;
    out.reserve(fields.size());
    for (const Field<S> &f : fields) out.push_back(f.setting);
    return out;
}

// Parses the config against `fields` and fills an S (value-initialised
// first). nullopt with `error` naming the setting.
template <typename S>
std::optional<S> parse_settings(aurora_str config_json, std::span<const Field<S>> fields, std::string &error) {
    std::vector<Setting> table = settings_of(fields);
    std::optional<Settings> s = Settings::parse(config_json, table, error);
    if (!s) return std::nullopt;
    S out{};
    for (const Field<S> &f : fields) {
        const char *name = f.setting.name;
        bool fits = std::visit(
            [&](auto member) {
                using T = std::remove_reference_t<decltype(out.*member)>;
                Setting::Type want = std::is_same_v<T, std::string>                ? Setting::String
                                     : std::is_same_v<T, bool>                     ? Setting::Bool
                                     : std::is_same_v<T, double>                   ? Setting::Number
                                     : std::is_same_v<T, std::vector<std::string>> ? Setting::StringList
                                                                                   : Setting::Int;
                if (want != f.setting.type) return false;
                if constexpr (std::is_same_v<T, std::string>) out.*member = s->string(name);
                else if constexpr (std::is_same_v<T, bool>) out.*member = s->boolean(name);
                else if constexpr (std::is_same_v<T, double>) out.*member = s->number(name);
                else if constexpr (std::is_same_v<T, std::vector<std::string>>) out.*member = s->list(name);
                else out.*member = static_cast<T>(s->integer(name));
                return true;
            },
            f.member);
        if (!fits) {  // the plugin's table is wrong, not the config
            error = std::string("setting \"") + name + "\": its field in the plugin does not have the setting's type";
            return std::nullopt;
        }
    }
    return out;
}

template <typename S, size_t N>
std::optional<S> parse_settings(aurora_str config_json, const Field<S> (&fields)[N], std::string &error) {
    return parse_settings(config_json, std::span<const Field<S>>(fields, N), error);
}

}  // namespace aurora::plugin
