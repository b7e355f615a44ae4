// The server API's keys (docs/server-api.md): each named, with scopes and a
// request rate, read from a JSON document (a file, or the environment):
//
//     {"keys": [{"name": "billing", "key": "<32+ characters>",
//                "scopes": ["publish", "read"], "rate_per_s": 50}]}
//
// A presented key is compared with every key, in constant time: SHA-256
// digests compared with CRYPTO_memcmp, all of them, whatever matched. The
// time taken tells neither which key nor how much of one matched. Keys are
// never logged nor echoed: errors name the key by its name or position.
//
// Thread contract: parse() anywhere; find() and take() on one thread (the
// service thread: the API's handlers).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aurora::chat {

enum Scope : uint8_t {
    kScopePublish = 1,   // publish, broadcast
    kScopeModerate = 2,  // disconnect, ban, unban
    kScopeRead = 4,      // presence, users, info
};

struct ServerKey {
    std::string name;
    std::array<unsigned char, 32> digest{};
    uint8_t scopes = 0;
    double rate_per_s = 50;
    double tokens = 0;         // the bucket: max(1, rate_per_s) deep, refilled continuously
    uint64_t refilled_ns = 0;  // when `tokens` was last brought up to date
};

class ServerKeys {
public:
    static constexpr size_t kMinKeyLength = 32;
    static constexpr size_t kMaxKeys = 256;

    // `source` names where the text came from, for errors.
    static std::optional<ServerKeys> parse(std::string_view json, std::string_view source, std::string &error);

    // The key presented, or nullptr. Compares with all of them.
    ServerKey *find(std::string_view presented);
    // One request of `key` at `now_ns`: true if within its rate, else false
    // with the seconds until one would be.
    static bool take(ServerKey &key, uint64_t now_ns, double &retry_after_s);

    size_t size() const { return keys_.size(); }

private:
    std::vector<ServerKey> keys_;
};

}  // namespace aurora::chat
