#include "config.h"

#include "json_text.h"

#include <arpa/inet.h>
#include <link.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <unordered_set>

#ifndef AURORA_DEFAULT_PLUGIN_PATH
#define AURORA_DEFAULT_PLUGIN_PATH "/usr/local/lib/aurora/plugins"
#endif
// The plugin folder relative to the installed bin/ and lib/ folders
// (host/CMakeLists.txt computes them from the install layout).
#ifndef AURORA_PLUGIN_DIR_FROM_BINDIR
#define AURORA_PLUGIN_DIR_FROM_BINDIR "../lib/aurora/plugins"
#endif
#ifndef AURORA_PLUGIN_DIR_FROM_LIBDIR
#define AURORA_PLUGIN_DIR_FROM_LIBDIR "aurora/plugins"
#endif

namespace fs = std::filesystem;

namespace aurora::host {

namespace {

// The file of the loaded object that holds this code: the aurora-host
// executable (bin/) or libaurora_host.so (lib/). Empty if not found.
struct OwnObject {
    std::string path;
    bool is_main_program = false;
};

int find_own_object(struct dl_phdr_info *info, size_t, void *data) {
    auto *out = static_cast<OwnObject *>(data);
    const auto here = reinterpret_cast<ElfW(Addr)>(&find_own_object);
    for (ElfW(Half) i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr) &ph = info->dlpi_phdr[i];
        if (ph.p_type != PT_LOAD) continue;
        const ElfW(Addr) start = info->dlpi_addr + ph.p_vaddr;
        if (here < start || here >= start + ph.p_memsz) continue;
        // The main program is listed with an empty name.
        out->is_main_program = info->dlpi_name == nullptr || info->dlpi_name[0] == '\0';
        out->path = out->is_main_program ? "/proc/self/exe" : info->dlpi_name;
        return 1;
    }
    return 0;
}

}  // namespace

std::string default_plugin_path() {
    OwnObject own;
    dl_iterate_phdr(find_own_object, &own);
    if (!own.path.empty()) {
        std::error_code ec;
        fs::path file = fs::canonical(own.path, ec);
        if (!ec) {
            fs::path dir = file.parent_path() /
                           (own.is_main_program ? AURORA_PLUGIN_DIR_FROM_BINDIR : AURORA_PLUGIN_DIR_FROM_LIBDIR);
            if (fs::is_directory(dir, ec)) return fs::weakly_canonical(dir, ec).string();
        }
    }
    return AURORA_DEFAULT_PLUGIN_PATH;
}

namespace {

struct ConfigError {
    std::string message;
};

// Reads the members of one JSON object, remembering which keys were used so
// that every other key is reported as unknown. Throws ConfigError (caught
// in parse_config; never crosses the ABI).
class ObjectReader {
public:
    ObjectReader(const cJSON *obj, std::string path) : obj_(obj), path_(std::move(path)) {
        if (!cJSON_IsObject(obj_)) fail(path_.empty() ? "the config must be a JSON object" : "must be an object");
    }

    const cJSON *get(const char *key) {
        used_.insert(key);
        return cJSON_GetObjectItemCaseSensitive(obj_, key);
    }

    std::optional<std::string> string(const char *key) {
        const cJSON *v = get(key);
        if (!v || cJSON_IsNull(v)) return std::nullopt;
        if (!cJSON_IsString(v)) fail_key(key, "must be a string");
        return std::string(v->valuestring);
    }

    std::optional<long long> integer(const char *key, long long min, long long max) {
        const cJSON *v = get(key);
        if (!v) return std::nullopt;
        // Range first: converting a double outside long long's range (1e300) is undefined behaviour.
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= -0x1p63 && v->valuedouble < 0x1p63) ||
            v->valuedouble != std::floor(v->valuedouble))
            fail_key(key, "must be an integer");
        auto n = static_cast<long long>(v->valuedouble);
        if (n < min || n > max)
            fail_key(key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
        return n;
    }

    std::optional<bool> boolean(const char *key) {
        const cJSON *v = get(key);
        if (!v) return std::nullopt;
        if (!cJSON_IsBool(v)) fail_key(key, "must be true or false");
        return cJSON_IsTrue(v);
    }

    const cJSON *object(const char *key) {
        const cJSON *v = get(key);
        if (v && !cJSON_IsObject(v)) fail_key(key, "must be an object");
        return v;
    }

    void finish() const {
        for (const cJSON *c = obj_->child; c; c = c->next) {
            if (!used_.count(c->string)) fail_key(c->string, "unknown key");
        }
        std::set<std::string> seen;
        for (const cJSON *c = obj_->child; c; c = c->next) {
            if (!seen.insert(c->string).second) fail_key(c->string, "duplicate key");
        }
    }

    std::string key_path(const std::string &key) const { return path_.empty() ? key : path_ + "." + key; }
    [[noreturn]] void fail_key(const std::string &key, const std::string &what) const {
        throw ConfigError{"config key '" + key_path(key) + "': " + what};
    }
    [[noreturn]] void fail(const std::string &what) const {
        throw ConfigError{path_.empty() ? what : "config key '" + path_ + "': " + what};
    }

private:
    const cJSON *obj_;
    std::string path_;
    std::unordered_set<std::string> used_;
};

// "10.0.0.1", "::1", or "10.0.0.0/8" (IPv4 CIDR, prefix 0-32, digits only).
bool valid_proxy_rule(const std::string &rule) {
    size_t slash = rule.find('/');
    std::string addr = rule.substr(0, slash);
    unsigned char buf[sizeof(in6_addr)];
    if (slash == std::string::npos)
        return inet_pton(AF_INET, addr.c_str(), buf) == 1 || inet_pton(AF_INET6, addr.c_str(), buf) == 1;
    std::string bits = rule.substr(slash + 1);
    if (bits.empty() || bits.size() > 2 || bits.find_first_not_of("0123456789") != std::string::npos) return false;
    return std::stoi(bits) <= 32 && inet_pton(AF_INET, addr.c_str(), buf) == 1;
}

bool valid_plugin_name(const std::string &n) {
    if (n.empty() || n.size() > 64) return false;
    for (char c : n) {
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
    }
    return true;
}

std::string resolve(const std::string &base_dir, const std::string &p) {
    if (p.empty() || fs::path(p).is_absolute() || base_dir.empty()) return p;
    return (fs::path(base_dir) / p).lexically_normal().string();
}

// "host:port" or "[v6]:port", nothing else (no spaces).
bool valid_host_port(const std::string &s) {
    size_t colon = s.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == s.size() || s.size() - colon > 6) return false;
    for (size_t i = colon + 1; i < s.size(); ++i)
        if (s[i] < '0' || s[i] > '9') return false;
    int port = std::stoi(s.substr(colon + 1));
    std::string host = s.substr(0, colon);
    if (host.find_first_of(" \t\r\n") != std::string::npos) return false;
    if (host.front() == '[') {  // [v6]: something inside, no other brackets
        std::string inner = host.size() >= 2 && host.back() == ']' ? host.substr(1, host.size() - 2) : std::string();
        if (inner.empty() || inner.find_first_of("[]") != std::string::npos) return false;
    } else if (host.find_first_of("[]:") != std::string::npos) {
        return false;
    }
    return port >= 1 && port <= 65535;
}

std::string trimmed(const std::string &s) {
    size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// A list of "host:port", or one string "h1:p1,h2:p2" (the environment's
// form, AURORA_REDIS_SENTINELS / AURORA_REDIS_NODES).
std::vector<std::string> host_port_list(ObjectReader &r, const char *key, const cJSON *v) {
    std::vector<std::string> items;
    if (cJSON_IsString(v)) {
        std::string text = v->valuestring;
        for (size_t start = 0; start <= text.size();) {  // "a:1, b:2" too
            size_t comma = std::min(text.find(',', start), text.size());
            if (std::string item = trimmed(text.substr(start, comma - start)); !item.empty())
                items.push_back(std::move(item));
            start = comma + 1;
        }
    } else if (cJSON_IsArray(v)) {
        for (const cJSON *e = v->child; e; e = e->next) {
            if (!cJSON_IsString(e)) r.fail_key(key, "must be a list of \"host:port\" strings");
            items.emplace_back(e->valuestring);
        }
    } else {
        r.fail_key(key, "must be a list of \"host:port\" strings");
    }
    for (const std::string &i : items)
        if (!valid_host_port(i)) r.fail_key(key, "'" + i + "' is not host:port");
    return items;
}

// "redis": {"url", "mode", "sentinels", "master_name", "nodes",
// "stream_shards"} (docs/scaling.md).
void read_redis(ObjectReader r, HostConfig &cfg) {
    if (auto u = r.string("url")) cfg.redis_url = *u;
    if (auto m = r.string("mode")) {
        if (*m != "single" && *m != "sentinel" && *m != "cluster")
            r.fail_key("mode", "must be \"single\", \"sentinel\" or \"cluster\"");
        cfg.redis_mode = *m;
    }
    if (const cJSON *s = r.get("sentinels")) cfg.redis_sentinels = host_port_list(r, "sentinels", s);
    if (auto n = r.string("master_name")) cfg.redis_master_name = *n;
    if (const cJSON *s = r.get("nodes")) cfg.redis_nodes = host_port_list(r, "nodes", s);
    bool shards_given = false;
    if (auto n = r.integer("stream_shards", 1, 1024)) {
        cfg.redis_stream_shards = static_cast<int>(*n);
        shards_given = true;
    }
    if (cfg.redis_mode == "sentinel") {
        if (cfg.redis_sentinels.empty()) r.fail_key("sentinels", "mode \"sentinel\" needs at least one Sentinel");
        if (cfg.redis_master_name.empty()) r.fail_key("master_name", "mode \"sentinel\" needs the master's name");
        if (cfg.redis_master_name.find_first_of(" \r\n") != std::string::npos)
            r.fail_key("master_name", "must not contain spaces or line breaks");
    } else if (!cfg.redis_sentinels.empty() || !cfg.redis_master_name.empty()) {
        r.fail_key(cfg.redis_sentinels.empty() ? "master_name" : "sentinels", "needs \"mode\": \"sentinel\"");
    }
    if (cfg.redis_mode == "cluster") {
        if (cfg.redis_nodes.empty()) r.fail_key("nodes", "mode \"cluster\" needs at least one seed node");
        // A cluster has database 0 only. The path starts after the host
        // (after the last '@': a password may hold a '/').
        const std::string &u = cfg.redis_url;
        size_t host = u.find("//") == std::string::npos ? 0 : u.find("//") + 2;
        if (size_t at = u.rfind('@'); at != std::string::npos && at >= host) host = at + 1;
        if (size_t slash = u.find('/', host);
            slash != std::string::npos && slash + 1 < u.size() && u.substr(slash + 1) != "0")
            r.fail_key("url", "a Redis Cluster has database 0 only");
    } else if (!cfg.redis_nodes.empty() || shards_given) {
        r.fail_key(cfg.redis_nodes.empty() ? "stream_shards" : "nodes", "needs \"mode\": \"cluster\"");
    }
    r.finish();
}

HostConfig parse(const cJSON *root, const std::string &base_dir) {
    HostConfig cfg;
    ObjectReader top(root, "");

    if (const cJSON *l = top.object("listen")) {
        ObjectReader r(l, "listen");
        if (auto h = r.string("host")) cfg.listen_host = *h;
        if (auto p = r.integer("port", 0, 65535)) cfg.listen_port = static_cast<int>(*p);
        r.finish();
    }
    if (auto w = top.integer("workers", 1, 64)) cfg.workers = static_cast<int>(*w);
    if (cfg.workers > 1 && cfg.listen_port == 0) top.fail_key("workers", "needs a fixed listen.port (not 0)");
    if (auto w = top.string("web_root")) {
        cfg.web_root = resolve(base_dir, *w);
        std::error_code ec;
        if (!fs::is_directory(cfg.web_root, ec)) top.fail_key("web_root", "'" + cfg.web_root + "' is not a folder");
        cfg.web_root = fs::canonical(cfg.web_root).string();
    }
    cfg.plugin_path = top.string("plugin_path").value_or(default_plugin_path());
    cfg.plugin_path = resolve(base_dir, cfg.plugin_path);

    if (const cJSON *o = top.object("redis")) read_redis(ObjectReader(o, "redis"), cfg);
    if (const cJSON *o = top.object("mongo")) {
        ObjectReader r(o, "mongo");
        if (auto u = r.string("url")) cfg.mongo_url = *u;
        r.finish();
    }
    if (!cfg.redis_url.starts_with("redis://")) top.fail_key("redis.url", "must start with redis://");
    if (!cfg.mongo_url.starts_with("mongodb://")) top.fail_key("mongo.url", "must start with mongodb://");

    if (const cJSON *o = top.object("jwt")) {
        ObjectReader r(o, "jwt");
        cfg.jwt_secret = r.string("secret");
        if (auto f = r.string("keys_file")) {
            if (f->empty()) r.fail_key("keys_file", "must not be empty");
            cfg.jwt_keys_file = resolve(base_dir, *f);
        }
        if (auto u = r.string("jwks_url")) {
            if (!u->starts_with("https://") && !u->starts_with("http://"))
                r.fail_key("jwks_url", "must start with https:// (or http:// on a trusted network)");
            cfg.jwt_jwks_url = *u;
        }
        if (!cfg.jwt_keys_file.empty() && !cfg.jwt_jwks_url.empty())
            r.fail_key("jwks_url", "set keys_file or jwks_url, not both");
        if (auto n = r.integer("keys_refresh_s", 1, 86400)) cfg.jwt_keys_refresh_s = static_cast<int>(*n);
        cfg.jwt_issuer = r.string("issuer").value_or("");
        cfg.jwt_audience = r.string("audience").value_or("");
        // A provider's keys sign tokens for every app it serves: without
        // both checks, a token issued to another app would pass here.
        if (!cfg.jwt_keys_file.empty() || !cfg.jwt_jwks_url.empty()) {
            if (cfg.jwt_issuer.empty())
                r.fail_key("issuer", "is required with keys_file or jwks_url (the provider's iss; \"*\": any issuer)");
            if (cfg.jwt_audience.empty())
                r.fail_key("audience", "is required with keys_file or jwks_url (this service's aud; \"*\": any "
                                       "audience, which accepts tokens the provider issued to other apps)");
        }
        if (const cJSON *c = r.object("claims")) {
            ObjectReader cr(c, "jwt.claims");
            for (auto [key, out] : {std::pair{"user_id", &cfg.jwt_user_id_claim}, {"username", &cfg.jwt_username_claim}})
                if (auto v = cr.string(key)) {
                    if (v->empty()) cr.fail_key(key, "must not be empty");
                    *out = *v;
                }
            cr.finish();
        }
        r.finish();
    }
    if (const cJSON *o = top.object("log")) {
        ObjectReader r(o, "log");
        if (auto lv = r.string("level")) {
            auto parsed = parse_log_level(*lv);
            if (!parsed) r.fail_key("level", "must be one of error, warn, info, debug");
            cfg.log_level = *parsed;
        }
        cfg.log_format = isatty(STDERR_FILENO) ? LogFormat::Text : LogFormat::Json;
        if (auto f = r.string("format")) {
            if (*f == "json") cfg.log_format = LogFormat::Json;
            else if (*f == "text") cfg.log_format = LogFormat::Text;
            else r.fail_key("format", "must be json or text");
        }
        r.finish();
    } else {
        cfg.log_format = isatty(STDERR_FILENO) ? LogFormat::Text : LogFormat::Json;
    }
    if (auto a = top.boolean("allow_anonymous")) cfg.allow_anonymous = *a;
    if (const cJSON *tp = top.get("trusted_proxies")) {
        if (!cJSON_IsArray(tp)) top.fail_key("trusted_proxies", "must be an array of IP addresses");
        for (const cJSON *e = tp->child; e; e = e->next) {
            if (!cJSON_IsString(e) || !valid_proxy_rule(e->valuestring))
                top.fail_key("trusted_proxies", std::string("'") + (cJSON_IsString(e) ? e->valuestring : "?") +
                                                    "' is not an IPv4/IPv6 address or an IPv4 CIDR range (a.b.c.d/0-32)");
            cfg.trusted_proxies.emplace_back(e->valuestring);
        }
    }

    if (const cJSON *o = top.object("limits")) {
        ObjectReader r(o, "limits");
        auto &L = cfg.limits;
        constexpr long long kMax = 1LL << 34;
        if (auto v = r.integer("max_frame_bytes", 64, kMax)) L.max_frame_bytes = static_cast<size_t>(*v);
        if (auto v = r.integer("hard_max_frame_bytes", 64, kMax)) L.hard_max_frame_bytes = static_cast<size_t>(*v);
        if (auto v = r.integer("send_queue_max_bytes", 1024, kMax)) L.send_queue_max_bytes = static_cast<size_t>(*v);
        if (auto v = r.integer("send_queue_max_frames", 1, kMax)) L.send_queue_max_frames = static_cast<size_t>(*v);
        if (auto v = r.integer("max_rooms_per_conn", 1, 1 << 20)) L.max_rooms_per_conn = static_cast<size_t>(*v);
        if (auto v = r.integer("http_max_body_bytes", 0, kMax)) L.http_max_body_bytes = static_cast<size_t>(*v);
        if (auto v = r.integer("http_body_timeout_ms", 100, 600000)) L.http_body_timeout_ms = static_cast<uint32_t>(*v);
        if (auto v = r.integer("max_connections", 1, 10000000)) L.max_connections = static_cast<size_t>(*v);
        if (auto v = r.integer("max_pending_per_conn", 1, 1 << 20)) L.max_pending_per_conn = static_cast<size_t>(*v);
        if (auto v = r.integer("frames_per_s", 1, 1000000)) L.frames.per_s = static_cast<double>(*v);
        if (auto v = r.integer("frames_burst", 1, 1000000)) L.frames.burst = static_cast<double>(*v);
        if (const cJSON *fb = r.object("frame_budgets")) {
            for (const cJSON *e = fb->child; e; e = e->next) {
                ObjectReader b(e, "limits.frame_budgets." + std::string(e->string));
                Budget budget;
                auto per_s = b.integer("per_s", 0, 1000000);
                auto burst = b.integer("burst", 1, 1000000);
                if (!per_s || !burst) b.fail("needs per_s and burst");
                b.finish();
                budget.per_s = static_cast<double>(*per_s);
                budget.burst = static_cast<double>(*burst);
                auto it = std::find_if(L.frame_budgets.begin(), L.frame_budgets.end(),
                                       [&](const auto &kv) { return kv.first == e->string; });
                if (it != L.frame_budgets.end()) it->second = budget;
                else L.frame_budgets.emplace_back(e->string, budget);
            }
        }
        r.finish();
        if (L.hard_max_frame_bytes < L.max_frame_bytes)
            r.fail_key("hard_max_frame_bytes", "must be >= limits.max_frame_bytes");
    }
    if (const cJSON *o = top.object("compression")) {
        ObjectReader r(o, "compression");
        auto &C = cfg.compression;
        if (auto v = r.boolean("enabled")) C.enabled = *v;
        if (auto v = r.integer("min_bytes", 0, 1 << 30)) C.min_bytes = static_cast<size_t>(*v);
        if (auto v = r.integer("level", 1, 9)) C.level = static_cast<int>(*v);
        if (auto v = r.integer("mem_level", 1, 9)) C.mem_level = static_cast<int>(*v);
        if (auto v = r.boolean("client_context_takeover")) C.client_context_takeover = *v;
        r.finish();
    }
    if (const cJSON *o = top.object("heartbeat")) {
        ObjectReader r(o, "heartbeat");
        if (auto v = r.integer("ping_interval_s", 1, 3600)) cfg.ping_interval_s = static_cast<int>(*v);
        if (auto v = r.integer("timeout_s", 1, 3600)) cfg.ping_timeout_s = static_cast<int>(*v);
        r.finish();
    }
    if (auto v = top.integer("shutdown_grace_ms", 0, 600000)) cfg.shutdown_grace_ms = static_cast<int>(*v);

    if (const cJSON *arr = top.get("plugins")) {
        if (!cJSON_IsArray(arr)) top.fail_key("plugins", "must be an array");
        std::set<std::string> names;
        int i = 0;
        for (const cJSON *p = arr->child; p; p = p->next, ++i) {
            ObjectReader r(p, "plugins[" + std::to_string(i) + "]");
            PluginConfig pc;
            auto name = r.string("name");
            if (!name) r.fail_key("name", "is required");
            if (!valid_plugin_name(*name)) r.fail_key("name", "'" + *name + "' must match [a-z0-9_]+ (at most 64)");
            if (!names.insert(*name).second) r.fail_key("name", "'" + *name + "' appears twice");
            pc.name = *name;
            if (auto path = r.string("path")) {
                pc.path = resolve(base_dir, *path);
            } else {
                pc.path = (fs::path(cfg.plugin_path) / (pc.name + ".so")).string();
            }
            if (const cJSON *c = r.object("config")) {
                char *text = cJSON_PrintUnformatted(c);
                pc.config_json = text ? text : "{}";
                cJSON_free(text);
            } else {
                pc.config_json = "{}";
            }
            r.finish();
            cfg.plugins.push_back(std::move(pc));
        }
    }
    top.finish();
    return cfg;
}

}  // namespace

std::map<std::string, std::string> HostConfig::settings() const {
    std::map<std::string, std::string> s{
        {"redis.url", redis_url},
        {"redis.mode", redis_mode},
        {"mongo.url", mongo_url},
        {"listen.host", listen_host},
        {"listen.port", std::to_string(listen_port)},
    };
    if (jwt_secret) s["jwt.secret"] = *jwt_secret;
    for (const auto &[key, value] : {std::pair{"jwt.keys_file", &jwt_keys_file}, {"jwt.jwks_url", &jwt_jwks_url},
                                     {"jwt.issuer", &jwt_issuer}, {"jwt.audience", &jwt_audience},
                                     {"jwt.user_id_claim", &jwt_user_id_claim},
                                     {"jwt.username_claim", &jwt_username_claim}})
        if (!value->empty()) s[key] = *value;
    if (!jwt_keys_file.empty() || !jwt_jwks_url.empty()) s["jwt.keys_refresh_s"] = std::to_string(jwt_keys_refresh_s);
    if (redis_mode == "sentinel") {
        std::string list;
        for (const std::string &h : redis_sentinels) list += (list.empty() ? "" : ",") + h;
        s["redis.sentinels"] = list;
        s["redis.master_name"] = redis_master_name;
    }
    if (redis_mode == "cluster") {
        std::string list;
        for (const std::string &h : redis_nodes) list += (list.empty() ? "" : ",") + h;
        s["redis.nodes"] = list;
        s["redis.stream_shards"] = std::to_string(redis_stream_shards);
    }
    if (!web_root.empty()) s["web_root"] = web_root;
    return s;
}

std::optional<HostConfig> parse_config(const std::string &json, const std::string &base_dir, std::string &error) {
    JsonPtr root = parse_json(json);
    if (!root) {
        const char *where = cJSON_GetErrorPtr();
        error = "config is not valid JSON";
        if (where) {
            size_t offset = static_cast<size_t>(where - json.data());
            if (offset <= json.size()) error += " (near byte " + std::to_string(offset) + ")";
        }
        return std::nullopt;
    }
    try {
        return parse(root.get(), base_dir);
    } catch (const ConfigError &e) {
        error = e.message;
        return std::nullopt;
    } catch (const std::exception &e) {
        error = std::string("config: ") + e.what();
        return std::nullopt;
    }
}

namespace {

cJSON *ensure_object(cJSON *root, const char *key) {
    cJSON *o = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!o) {
        o = cJSON_AddObjectToObject(root, key);
    }
    return cJSON_IsObject(o) ? o : nullptr;
}

void replace(cJSON *obj, const char *key, cJSON *value) {
    if (cJSON_GetObjectItemCaseSensitive(obj, key)) {
        cJSON_ReplaceItemInObjectCaseSensitive(obj, key, value);
    } else {
        cJSON_AddItemToObject(obj, key, value);
    }
}

}  // namespace

std::optional<std::string> apply_env_overrides(const std::string &json, std::string &error) {
    JsonPtr root = parse_json(json);
    if (!root || !cJSON_IsObject(root.get())) return json;  // parse_config reports it

    struct Override {
        const char *env, *section, *key;
        bool integer;
    };
    const Override overrides[] = {
        {"AURORA_HOST", "listen", "host", false},       {"AURORA_PORT", "listen", "port", true},
        {"AURORA_REDIS_URL", "redis", "url", false},    {"AURORA_MONGO_URL", "mongo", "url", false},
        {"AURORA_REDIS_MODE", "redis", "mode", false},  {"AURORA_REDIS_SENTINELS", "redis", "sentinels", false},
        {"AURORA_REDIS_MASTER_NAME", "redis", "master_name", false},
        {"AURORA_REDIS_NODES", "redis", "nodes", false},  {"AURORA_REDIS_STREAM_SHARDS", "redis", "stream_shards", true},
        {"AURORA_JWT_SECRET", "jwt", "secret", false},  {"AURORA_PLUGIN_PATH", nullptr, "plugin_path", false},
        {"AURORA_JWT_KEYS_FILE", "jwt", "keys_file", false}, {"AURORA_JWT_JWKS_URL", "jwt", "jwks_url", false},
        {"AURORA_JWT_ISSUER", "jwt", "issuer", false},  {"AURORA_JWT_AUDIENCE", "jwt", "audience", false},
        {"AURORA_LOG_LEVEL", "log", "level", false},
    };
    for (const auto &o : overrides) {
        const char *v = std::getenv(o.env);
        if (!v) continue;
        cJSON *target = o.section ? ensure_object(root.get(), o.section) : root.get();
        if (!target) {
            error = std::string(o.env) + ": config key '" + o.section + "' is not an object";
            return std::nullopt;
        }
        if (o.integer) {
            char *end = nullptr;
            long n = std::strtol(v, &end, 10);
            if (!*v || *end || n < 0 || n > 65535) {
                error = std::string(o.env) + "='" + v + "': must be an integer between 0 and 65535";
                return std::nullopt;
            }
            replace(target, o.key, cJSON_CreateNumber(static_cast<double>(n)));
        } else {
            replace(target, o.key, cJSON_CreateString(v));
        }
    }
    char *text = cJSON_PrintUnformatted(root.get());
    std::string out = text ? text : json;
    cJSON_free(text);
    return out;
}

}  // namespace aurora::host
