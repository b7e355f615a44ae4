// python_policy's settings: declared once as a table (policy_settings.cpp),
// validated at init. README-style table in docs/python.md.
#pragma once

#include <set>
#include <string>
#include <vector>

namespace aurora::policy {

struct Settings {
    std::string module;                 // required: the policy module's name ("profanity_policy")
    std::vector<std::string> path;      // directories put in front of sys.path
    bool fallback_drop = false;         // "allow" (false) or "drop": what an exception decides
    std::string options_json = "{}";    // passed to the module's configure(options) if it has one
    std::set<std::string> types{"message"};  // message types given to on_message; others pass
    std::string python_home;            // PYTHONHOME for the embedded interpreter ("" = Python's default)
};

// Parses the plugin's config JSON. On error returns false and sets `error`
// (one line naming the setting).
bool parse_settings(const std::string &json, Settings &out, std::string &error);

}  // namespace aurora::policy
