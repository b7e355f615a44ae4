// A plugin's settings, declared once as a table (name, type, default, doc):
// the same table validates the config at init (unknown keys and wrong types
// are errors) and generates the settings table of the plugin's README.
//
//     static const Setting kSettings[] = {
//         {"batch", Setting::Int, "50", "entries read per XREADGROUP", 1, 10000},
//         {"stream", Setting::String, "chat:messages", "the stream to consume"},
//     };
//     std::string err;
//     auto s = Settings::parse(host->config_json(self), kSettings, err);
//     if (!s) { host->log_msg(self, AURORA_LOG_ERROR, "config: %s", err.c_str()); return AURORA_ERR; }
//     int batch = s->integer("batch");
#pragma once

#include <aurora/common.h>

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
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

}  // namespace aurora::plugin
