#include "server_keys.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cmath>

#include "json.h"

namespace aurora::chat {

namespace {

std::array<unsigned char, 32> digest_of(std::string_view text) {
    std::array<unsigned char, 32> d{};
    SHA256(reinterpret_cast<const unsigned char *>(text.data()), text.size(), d.data());
    return d;
}

bool valid_name(std::string_view s) {
    return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    });
}

// Printable ASCII without spaces: what fits in a header as it is.
bool valid_key(std::string_view s) {
    return s.size() >= ServerKeys::kMinKeyLength && s.size() <= 512 &&
           std::all_of(s.begin(), s.end(), [](char c) { return c > ' ' && c < 127; });
}

std::optional<uint8_t> scope_of(std::string_view s) {
    if (s == "publish") return kScopePublish;
    if (s == "moderate") return kScopeModerate;
    if (s == "read") return kScopeRead;
    return std::nullopt;
}

}  // namespace

std::optional<ServerKeys> ServerKeys::parse(std::string_view json, std::string_view source, std::string &error) {
    const std::string where(source);
    plugin::Json doc = plugin::parse_json(json);
    const cJSON *keys = doc && cJSON_IsObject(doc.get()) ? cJSON_GetObjectItemCaseSensitive(doc.get(), "keys") : nullptr;
    if (!cJSON_IsArray(keys)) {
        error = where + ": expected a JSON object {\"keys\": [...]}";
        return std::nullopt;
    }
    for (const cJSON *f = doc->child; f; f = f->next) {
        if (std::string_view(f->string) != "keys") {
            error = where + ": unknown field \"" + std::string(f->string).substr(0, 64) + "\"";
            return std::nullopt;
        }
    }
    ServerKeys out;
    int index = 0;
    for (const cJSON *k = keys->child; k; k = k->next, ++index) {
        const std::string at = where + ": key " + std::to_string(index);
        if (!cJSON_IsObject(k) || plugin::has_duplicate_key(k)) {
            error = at + ": expected an object with each field once";
            return std::nullopt;
        }
        ServerKey key;
        const char *secret = nullptr;
        bool has_scopes = false;
        for (const cJSON *f = k->child; f; f = f->next) {
            std::string_view field(f->string);
            if (field == "name" && cJSON_IsString(f)) {
                key.name = f->valuestring;
            } else if (field == "key" && cJSON_IsString(f)) {
                secret = f->valuestring;
            } else if (field == "scopes" && cJSON_IsArray(f)) {
                has_scopes = true;
                for (const cJSON *s = f->child; s; s = s->next) {
                    std::optional<uint8_t> scope = cJSON_IsString(s) ? scope_of(s->valuestring) : std::nullopt;
                    if (!scope) {
                        error = at + ": scopes are \"publish\", \"moderate\" and \"read\"";
                        return std::nullopt;
                    }
                    key.scopes |= *scope;
                }
            } else if (field == "rate_per_s" && cJSON_IsNumber(f)) {
                key.rate_per_s = f->valuedouble;
                if (!std::isfinite(key.rate_per_s) || key.rate_per_s < 0.1 || key.rate_per_s > 100000) {
                    error = at + ": rate_per_s must be 0.1 to 100000";
                    return std::nullopt;
                }
            } else {
                error = at + ": unknown field or wrong type: \"" + std::string(field).substr(0, 64) + "\"";
                return std::nullopt;
            }
        }
        if (!valid_name(key.name)) {
            error = at + ": \"name\" must be 1-64 characters of a-z 0-9 _ -";
            return std::nullopt;
        }
        const std::string named = where + ": key \"" + key.name + "\"";
        if (!secret || !valid_key(secret)) {
            error = named + ": \"key\" must be " + std::to_string(kMinKeyLength) +
                    "-512 printable ASCII characters without spaces (e.g. openssl rand -hex 32)";
            return std::nullopt;
        }
        if (!has_scopes || key.scopes == 0) {
            error = named + ": \"scopes\" must name at least one of publish, moderate, read";
            return std::nullopt;
        }
        key.digest = digest_of(secret);
        key.tokens = std::max(1.0, key.rate_per_s);
        for (const ServerKey &other : out.keys_) {
            if (other.name == key.name) {
                error = named + ": the name is used twice";
                return std::nullopt;
            }
            if (other.digest == key.digest) {
                error = named + ": the same key as \"" + other.name + "\"";
                return std::nullopt;
            }
        }
        if (out.keys_.size() == kMaxKeys) {
            error = where + ": more than " + std::to_string(kMaxKeys) + " keys";
            return std::nullopt;
        }
        out.keys_.push_back(std::move(key));
    }
    if (out.keys_.empty()) {
        error = where + ": no keys";
        return std::nullopt;
    }
    return out;
}

ServerKey *ServerKeys::find(std::string_view presented) {
    const std::array<unsigned char, 32> d = digest_of(presented);
    ServerKey *found = nullptr;
    for (ServerKey &k : keys_) {
        bool same = CRYPTO_memcmp(k.digest.data(), d.data(), d.size()) == 0;
        found = same ? &k : found;  // no early exit
    }
    return found;
}

bool ServerKeys::take(ServerKey &key, uint64_t now_ns, double &retry_after_s) {
    const double depth = std::max(1.0, key.rate_per_s);  // a burst of one second's worth, at least one
    if (key.refilled_ns != 0 && now_ns > key.refilled_ns)
        key.tokens = std::min(depth, key.tokens + static_cast<double>(now_ns - key.refilled_ns) * 1e-9 * key.rate_per_s);
    key.refilled_ns = now_ns;
    if (key.tokens >= 1) {
        key.tokens -= 1;
        return true;
    }
    retry_after_s = (1 - key.tokens) / key.rate_per_s;
    return false;
}

}  // namespace aurora::chat
