// One plugin shared object: dlopen, the ABI checks, dlclose.
//
// Main thread only. A PluginLibrary that exists has passed every check; its
// hooks() is a copy of the plugin's descriptor normalised to this host's
// layout (fields beyond the plugin's struct_size are NULL), so the rest of
// the host never looks at struct_size again.
#pragma once

#include <aurora/plugin.h>

#include <memory>
#include <string>

namespace aurora::host {

class PluginLibrary {
public:
    // Loads `path` and checks it. On failure returns nullptr and sets `error`
    // to a message naming the file, the reason and, for version mismatches,
    // both ABI versions.
    static std::unique_ptr<PluginLibrary> open(const std::string &path, std::string &error);
    PluginLibrary() = default;  // empty; use open()
    ~PluginLibrary();
    PluginLibrary(const PluginLibrary &) = delete;
    PluginLibrary &operator=(const PluginLibrary &) = delete;

    const aurora_plugin &hooks() const { return hooks_; }
    const std::string &path() const { return path_; }
    std::string abi_version() const;  // "1.0", as the plugin declared it

private:
    std::string path_;
    void *handle_ = nullptr;
    aurora_plugin hooks_{};
};

}  // namespace aurora::host
