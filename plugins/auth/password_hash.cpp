#include "password_hash.h"

#include <crypt.h>

#include <memory>

namespace aurora::auth {

namespace {

// struct crypt_data is ~32 KiB: on the heap, zeroed as crypt_rn requires.
std::unique_ptr<crypt_data> work_area() { return std::make_unique<crypt_data>(); }

// crypt takes C strings: a password with a NUL byte is refused upstream
// (credentials.cpp); here it simply never matches.
bool c_string_safe(std::string_view s) { return s.find('\0') == std::string_view::npos; }

}  // namespace

bool constant_time_equal(std::string_view a, std::string_view b) {
    unsigned char diff = a.size() == b.size() ? 0 : 1;
    const size_t n = a.size() < b.size() ? a.size() : b.size();
    for (size_t i = 0; i < n; ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
    return diff == 0;
}

std::optional<std::string> hash_password(std::string_view password, HashScheme scheme, int cost) {
    if (!c_string_safe(password)) return std::nullopt;
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    const char *prefix = scheme == HashScheme::Bcrypt ? "$2b$" : "$y$";
    // rbytes NULL: libxcrypt draws the salt from the OS's random source.
    if (!crypt_gensalt_rn(prefix, static_cast<unsigned long>(cost), nullptr, 0, setting, sizeof setting))
        return std::nullopt;
    auto data = work_area();
    const std::string phrase(password);
    const char *out = crypt_rn(phrase.c_str(), setting, data.get(), sizeof *data);
    if (!out || out[0] == '*') return std::nullopt;
    return std::string(out);
}

bool verify_password(std::string_view password, std::string_view stored) {
    if (!c_string_safe(password) || !c_string_safe(stored) || stored.empty() || stored[0] != '$') return false;
    auto data = work_area();
    const std::string phrase(password), setting(stored);
    const char *out = crypt_rn(phrase.c_str(), setting.c_str(), data.get(), sizeof *data);
    if (!out || out[0] == '*') return false;
    return constant_time_equal(out, stored);
}

}  // namespace aurora::auth
