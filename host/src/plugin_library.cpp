#include "plugin_library.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstring>

namespace aurora::host {

namespace {

std::string host_abi() { return std::to_string(AURORA_ABI_MAJOR) + "." + std::to_string(AURORA_ABI_MINOR); }

bool valid_name(const char *n) {
    if (!n || !*n || std::strlen(n) > 64) return false;
    for (const char *p = n; *p; ++p) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) return false;
    }
    return true;
}

}  // namespace

std::unique_ptr<PluginLibrary> PluginLibrary::open(const std::string &path, std::string &error) {
    auto fail = [&](const std::string &why) {
        error = "plugin " + path + ": " + why;
        return nullptr;
    };
    auto lib = std::make_unique<PluginLibrary>();
    lib->path_ = path;

    dlerror();  // clear any stale error
    lib->handle_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib->handle_) {
        const char *e = dlerror();
        return fail(std::string("cannot load: ") + (e ? e : "unknown dlopen error"));
    }
    dlerror();
    void *sym = dlsym(lib->handle_, AURORA_PLUGIN_ENTRY_SYMBOL);
    if (const char *e = dlerror(); e || !sym) {
        return fail(std::string("not an Aurora plugin: no ") + AURORA_PLUGIN_ENTRY_SYMBOL + " symbol (" +
                    (e ? e : "NULL") + ")");
    }
    aurora_plugin_entry_fn entry;
    static_assert(sizeof entry == sizeof sym);
    std::memcpy(&entry, &sym, sizeof entry);  // object pointer -> function pointer, as POSIX allows
    const aurora_plugin *desc = entry();
    if (!desc) return fail(std::string(AURORA_PLUGIN_ENTRY_SYMBOL) + "() returned NULL");

    // The first three fields are stable across every ABI version.
    const std::string plugin_abi = std::to_string(desc->abi_major) + "." + std::to_string(desc->abi_minor);
    if (desc->abi_major != AURORA_ABI_MAJOR) {
        return fail("built for ABI " + plugin_abi + ", this host implements ABI " + host_abi() +
                    " (the major version must match: rebuild the plugin against this SDK)");
    }
    if (desc->abi_minor > AURORA_ABI_MINOR) {
        return fail("built for ABI " + plugin_abi + ", newer than this host's ABI " + host_abi() +
                    " (upgrade the host, or build the plugin against an older SDK)");
    }
    if (desc->struct_size < AURORA_PLUGIN_V1_0_SIZE) {
        return fail("descriptor struct_size " + std::to_string(desc->struct_size) + " is smaller than the ABI " +
                    "1.0 descriptor (" + std::to_string(AURORA_PLUGIN_V1_0_SIZE) + " bytes); ABI " + plugin_abi +
                    ", host ABI " + host_abi());
    }
    if (!valid_name(desc->name)) {
        return fail(std::string("descriptor name ") + (desc->name ? "'" + std::string(desc->name) + "'" : "NULL") +
                    " is not a valid plugin name ([a-z0-9_]+, at most 64 characters); ABI " + plugin_abi);
    }
    // Copy what the plugin has; a newer host leaves later hooks NULL.
    std::memcpy(&lib->hooks_, desc, std::min<size_t>(desc->struct_size, sizeof(aurora_plugin)));
    lib->hooks_.struct_size = sizeof(aurora_plugin);
    return lib;
}

PluginLibrary::~PluginLibrary() {
    if (handle_) dlclose(handle_);
}

std::string PluginLibrary::abi_version() const {
    return std::to_string(hooks_.abi_major) + "." + std::to_string(hooks_.abi_minor);
}

}  // namespace aurora::host
