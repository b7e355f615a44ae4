// Password hashes with libxcrypt: bcrypt ($2b$) or yescrypt ($y$). Each call
// costs tens of milliseconds by design: call only from the plugin's worker
// threads, never from the service thread. Thread-safe (crypt_rn with a
// per-call work area).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace aurora::auth {

enum class HashScheme { Bcrypt, Yescrypt };

// A new salted hash of `password`; nullopt if libxcrypt fails (no entropy,
// bad cost). `cost`: bcrypt 4-31 (log2 rounds), yescrypt 1-11.
std::optional<std::string> hash_password(std::string_view password, HashScheme scheme, int cost);

// True if `password` matches `stored` (any scheme libxcrypt knows). The final
// comparison is constant-time. A malformed `stored` never matches.
bool verify_password(std::string_view password, std::string_view stored);

// Byte comparison whose time does not depend on where the inputs differ.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace aurora::auth
