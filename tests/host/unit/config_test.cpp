#include <gtest/gtest.h>

#include <cstdlib>

#include "config.h"

namespace aurora::host {
namespace {

std::optional<HostConfig> parse(const std::string &json, std::string &err) { return parse_config(json, "", err); }

TEST(Config, DefaultsWhenEmpty) {
    std::string err;
    auto cfg = parse("{}", err);
    ASSERT_TRUE(cfg) << err;
    EXPECT_EQ(cfg->listen_host, "127.0.0.1");
    EXPECT_EQ(cfg->listen_port, 8080);
    EXPECT_EQ(cfg->limits.max_frame_bytes, 64u * 1024);
    EXPECT_TRUE(cfg->plugins.empty());
    EXPECT_FALSE(cfg->allow_anonymous);
}

TEST(Config, EveryMistakeNamesItsKey) {
    const std::pair<const char *, const char *> cases[] = {
        {R"({"listen": {"port": "8080"}})", "listen.port"},
        {R"({"listen": {"port": 70000}})", "listen.port"},
        {R"({"listen": {"prot": 1}})", "listen.prot"},
        {R"({"lsiten": {}})", "lsiten"},
        {R"({"workers": 0})", "workers"},
        {R"({"workers": 2, "listen": {"port": 0}})", "workers"},
        {R"({"log": {"level": "loud"}})", "log.level"},
        {R"({"log": {"format": "xml"}})", "log.format"},
        {R"({"redis": {"url": "http://x"}})", "redis.url"},
        {R"({"redis": {"mode": "sharded"}})", "redis.mode"},
        {R"({"jwt": {"keys_file": ""}})", "jwt.keys_file"},
        {R"({"jwt": {"jwks_url": "ftp://idp/jwks"}})", "jwt.jwks_url"},
        {R"({"jwt": {"keys_file": "k.json", "jwks_url": "https://idp/jwks"}})", "jwt.jwks_url"},
        {R"({"jwt": {"jwks_url": "https://idp/jwks", "audience": "a"}})", "jwt.issuer"},
        {R"({"jwt": {"keys_file": "k.json", "issuer": "https://idp/"}})", "jwt.audience"},
        {R"({"jwt": {"keys_refresh_s": 0, "issuer": "i", "audience": "a"}})", "jwt.keys_refresh_s"},
        {R"({"jwt": {"issuer": 5}})", "jwt.issuer"},
        {R"({"jwt": {"claims": {"user_id": ""}}})", "jwt.claims.user_id"},
        {R"({"jwt": {"claims": {"sub": "x"}}})", "jwt.claims.sub"},
        {R"({"jwt": {"claims": []}})", "jwt.claims"},
        {R"({"redis": {"mode": "cluster"}})", "redis.nodes"},
        {R"({"redis": {"mode": "cluster", "nodes": []}})", "redis.nodes"},
        {R"({"redis": {"mode": "cluster", "nodes": ["h"]}})", "redis.nodes"},
        {R"({"redis": {"mode": "cluster", "nodes": "h:1,:2"}})", "redis.nodes"},
        {R"({"redis": {"mode": "cluster", "nodes": ["h:1"], "stream_shards": 0}})", "redis.stream_shards"},
        {R"({"redis": {"mode": "cluster", "nodes": ["h:1"], "stream_shards": 1025}})", "redis.stream_shards"},
        {R"({"redis": {"mode": "cluster", "nodes": ["h:1"], "stream_shards": "4"}})", "redis.stream_shards"},
        {R"({"redis": {"mode": "cluster", "nodes": ["h:1"], "url": "redis://h:1/3"}})", "redis.url"},
        {R"({"redis": {"nodes": ["h:1"]}})", "redis.nodes"},
        {R"({"redis": {"stream_shards": 4}})", "redis.stream_shards"},
        {R"({"redis": {"mode": "sentinel", "sentinels": ["h:1"], "master_name": "m", "nodes": ["h:2"]}})",
         "redis.nodes"},
        {R"({"redis": {"mode": "sentinel", "master_name": "m"}})", "redis.sentinels"},
        {R"({"redis": {"mode": "sentinel", "sentinels": ["h:1"]}})", "redis.master_name"},
        {R"({"redis": {"mode": "sentinel", "sentinels": ["h:1"], "master_name": "a b"}})", "redis.master_name"},
        {R"({"redis": {"mode": "sentinel", "sentinels": ["h"], "master_name": "m"}})", "redis.sentinels"},
        {R"({"redis": {"mode": "sentinel", "sentinels": ["h:0"], "master_name": "m"}})", "redis.sentinels"},
        {R"({"redis": {"mode": "sentinel", "sentinels": ["::1:5"], "master_name": "m"}})", "redis.sentinels"},
        {R"({"redis": {"mode": "sentinel", "sentinels": [26379], "master_name": "m"}})", "redis.sentinels"},
        {R"({"redis": {"sentinels": ["h:1"]}})", "redis.sentinels"},
        {R"({"redis": {"mode": "sentinel", "sentinels": ["[:26379"], "master_name": "m"}})", "redis.sentinels"},
        {R"({"redis": {"mode": "sentinel", "sentinels": ["[]:26379"], "master_name": "m"}})", "redis.sentinels"},
        {R"({"redis": {"mode": "sentinel", "sentinels": ["a b:1"], "master_name": "m"}})", "redis.sentinels"},
        {R"({"redis": {"mode": "sentinel", "sentinels": [" h:1"], "master_name": "m"}})", "redis.sentinels"},
        {R"({"redis": {"master_name": "m"}})", "redis.master_name"},
        {R"({"redis": {"mode": "single", "sentinel": []}})", "redis.sentinel"},
        {R"({"limits": {"max_frame_bytes": 1.5}})", "limits.max_frame_bytes"},
        {R"({"limits": {"max_frame_bytes": 4096, "hard_max_frame_bytes": 1024}})", "limits.hard_max_frame_bytes"},
        {R"({"plugins": {}})", "plugins"},
        {R"({"plugins": [{"path": "x.so"}]})", "plugins[0].name"},
        {R"({"plugins": [{"name": "Echo"}]})", "plugins[0].name"},
        {R"({"plugins": [{"name": "a"}, {"name": "a"}]})", "plugins[1].name"},
        {R"({"plugins": [{"name": "a", "confg": {}}]})", "plugins[0].confg"},
        {R"({"plugins": [{"name": "a", "config": []}]})", "plugins[0].config"},
        {R"({"allow_anonymous": "yes"})", "allow_anonymous"},
        {R"({"web_root": "/definitely/not/here"})", "web_root"},
        {R"({"a": 1, "a": 1})", "a"},
        {R"({"trusted_proxies": ["10.0.0.0/"]})", "trusted_proxies"},
        {R"({"trusted_proxies": ["10.0.0.0/x"]})", "trusted_proxies"},
        {R"({"trusted_proxies": ["10.0.0.0/33"]})", "trusted_proxies"},
        {R"({"trusted_proxies": ["nginx"]})", "trusted_proxies"},
        {R"({"trusted_proxies": "10.0.0.1"})", "trusted_proxies"},
    };
    for (const auto &[json, key] : cases) {
        std::string err;
        EXPECT_FALSE(parse(json, err)) << json;
        EXPECT_NE(err.find(std::string("'") + key + "'"), std::string::npos) << json << " -> " << err;
    }
}

TEST(Config, RedisSentinel) {
    std::string err;
    auto cfg = parse(R"({"redis": {"mode": "sentinel", "sentinels": ["10.0.0.1:26379", "[::1]:26380"],
                                   "master_name": "aurora", "url": "redis://:pw@/2"}})",
                     err);
    ASSERT_TRUE(cfg) << err;
    auto s = cfg->settings();
    EXPECT_EQ(s.at("redis.mode"), "sentinel");
    EXPECT_EQ(s.at("redis.sentinels"), "10.0.0.1:26379,[::1]:26380");
    EXPECT_EQ(s.at("redis.master_name"), "aurora");
    EXPECT_EQ(s.at("redis.url"), "redis://:pw@/2");

    // The environment gives the list as one string.
    setenv("AURORA_REDIS_MODE", "sentinel", 1);
    setenv("AURORA_REDIS_SENTINELS", "s1:26379, s2:26379", 1);
    setenv("AURORA_REDIS_MASTER_NAME", "aurora", 1);
    auto text = apply_env_overrides("{}", err);
    unsetenv("AURORA_REDIS_MODE");
    unsetenv("AURORA_REDIS_SENTINELS");
    unsetenv("AURORA_REDIS_MASTER_NAME");
    ASSERT_TRUE(text) << err;
    cfg = parse(*text, err);
    ASSERT_TRUE(cfg) << err;
    EXPECT_EQ(cfg->redis_sentinels, (std::vector<std::string>{"s1:26379", "s2:26379"}));

    cfg = parse("{}", err);
    ASSERT_TRUE(cfg) << err;
    EXPECT_EQ(cfg->settings().at("redis.mode"), "single");
    EXPECT_FALSE(cfg->settings().count("redis.sentinels"));
}

TEST(Config, RedisCluster) {
    std::string err;
    auto cfg = parse(R"({"redis": {"mode": "cluster", "nodes": ["10.0.0.1:7000", "[::1]:7001"], "stream_shards": 6,
                                   "url": "redis://:pw@h/0"}})",
                     err);
    ASSERT_TRUE(cfg) << err;
    EXPECT_TRUE(parse(R"({"redis": {"mode": "cluster", "nodes": ["h:1"], "url": "redis://:p/w@h"}})", err)) << err;
    auto s = cfg->settings();
    EXPECT_EQ(s.at("redis.mode"), "cluster");
    EXPECT_EQ(s.at("redis.nodes"), "10.0.0.1:7000,[::1]:7001");
    EXPECT_EQ(s.at("redis.stream_shards"), "6");
    EXPECT_FALSE(s.count("redis.sentinels"));

    setenv("AURORA_REDIS_MODE", "cluster", 1);
    setenv("AURORA_REDIS_NODES", "n1:7000, n2:7000", 1);
    auto text = apply_env_overrides("{}", err);
    unsetenv("AURORA_REDIS_MODE");
    unsetenv("AURORA_REDIS_NODES");
    ASSERT_TRUE(text) << err;
    cfg = parse(*text, err);
    ASSERT_TRUE(cfg) << err;
    EXPECT_EQ(cfg->redis_nodes, (std::vector<std::string>{"n1:7000", "n2:7000"}));
    EXPECT_EQ(cfg->settings().at("redis.stream_shards"), "8");  // the default
}

TEST(Config, TrustedProxies) {
    std::string err;
    auto cfg = parse(R"({"trusted_proxies": ["10.0.0.0/8", "127.0.0.1", "::1", "0.0.0.0/0"]})", err);
    ASSERT_TRUE(cfg) << err;
    EXPECT_EQ(cfg->trusted_proxies.size(), 4u);
}

TEST(Config, NotJsonOrNotAnObject) {
    std::string err;
    EXPECT_FALSE(parse("{\"listen\":", err));
    EXPECT_NE(err.find("not valid JSON"), std::string::npos) << err;
    EXPECT_FALSE(parse("[]", err));
    EXPECT_NE(err.find("object"), std::string::npos) << err;
    EXPECT_FALSE(parse("{} trailing", err));
}

TEST(Config, PluginPathsAndConfigText) {
    std::string err;
    auto cfg = parse_config(R"({"plugin_path": "lib", "plugins": [
        {"name": "echo", "config": {"tick_ms": 5}},
        {"name": "other", "path": "custom/other.so"}]})",
                            "/etc/aurora", err);
    ASSERT_TRUE(cfg) << err;
    EXPECT_EQ(cfg->plugins[0].path, "/etc/aurora/lib/echo.so");
    EXPECT_EQ(cfg->plugins[0].config_json, R"({"tick_ms":5})");
    EXPECT_EQ(cfg->plugins[1].path, "/etc/aurora/custom/other.so");
    EXPECT_EQ(cfg->plugins[1].config_json, "{}");
}

TEST(Config, IdentityProviderKeys) {
    std::string err;
    auto cfg = parse(R"({"jwt": {"jwks_url": "https://idp.example/jwks", "issuer": "https://idp.example/",
                                 "audience": "aurora", "keys_refresh_s": 60,
                                 "claims": {"user_id": "uid", "username": "email"}}})", err);
    ASSERT_TRUE(cfg) << err;
    auto s = cfg->settings();
    EXPECT_EQ(s.at("jwt.jwks_url"), "https://idp.example/jwks");
    EXPECT_EQ(s.at("jwt.issuer"), "https://idp.example/");
    EXPECT_EQ(s.at("jwt.audience"), "aurora");
    EXPECT_EQ(s.at("jwt.keys_refresh_s"), "60");
    EXPECT_EQ(s.at("jwt.user_id_claim"), "uid");
    EXPECT_EQ(s.at("jwt.username_claim"), "email");
    EXPECT_FALSE(s.contains("jwt.keys_file"));
    // A relative keys_file is the config file's folder's.
    auto file = parse_config(R"({"jwt": {"keys_file": "keys/jwks.json", "issuer": "*", "audience": "a"}})",
                             "/etc/aurora", err);
    ASSERT_TRUE(file) << err;
    EXPECT_EQ(file->settings().at("jwt.keys_file"), "/etc/aurora/keys/jwks.json");
    EXPECT_EQ(file->settings().at("jwt.keys_refresh_s"), "300");
    // Nothing set: no jwt.* key but the secret's absence.
    auto none = parse("{}", err);
    for (const auto &[k, v] : none->settings()) EXPECT_FALSE(k.starts_with("jwt.")) << k;
}

TEST(Config, EnvironmentOverrides) {
    setenv("AURORA_PORT", "9001", 1);
    setenv("AURORA_REDIS_URL", "redis://10.0.0.1:6379/2", 1);
    setenv("AURORA_JWT_SECRET", "s3cret", 1);
    setenv("AURORA_JWT_JWKS_URL", "https://idp.example/jwks", 1);
    setenv("AURORA_JWT_AUDIENCE", "aurora", 1);
    setenv("AURORA_JWT_ISSUER", "https://idp.example/", 1);
    std::string err;
    auto text = apply_env_overrides(R"({"listen": {"host": "0.0.0.0"}})", err);
    unsetenv("AURORA_PORT");
    unsetenv("AURORA_REDIS_URL");
    unsetenv("AURORA_JWT_SECRET");
    unsetenv("AURORA_JWT_JWKS_URL");
    unsetenv("AURORA_JWT_AUDIENCE");
    unsetenv("AURORA_JWT_ISSUER");
    ASSERT_TRUE(text) << err;
    auto cfg = parse(*text, err);
    ASSERT_TRUE(cfg) << err;
    EXPECT_EQ(cfg->listen_host, "0.0.0.0");
    EXPECT_EQ(cfg->listen_port, 9001);
    EXPECT_EQ(cfg->redis_url, "redis://10.0.0.1:6379/2");
    EXPECT_EQ(cfg->settings().at("jwt.secret"), "s3cret");
    EXPECT_EQ(cfg->settings().at("jwt.jwks_url"), "https://idp.example/jwks");
    EXPECT_EQ(cfg->settings().at("jwt.audience"), "aurora");

    setenv("AURORA_PORT", "80a", 1);
    EXPECT_FALSE(apply_env_overrides("{}", err));
    unsetenv("AURORA_PORT");
    EXPECT_NE(err.find("AURORA_PORT"), std::string::npos) << err;
}

// Found by fuzz_host_config: a number far outside long long's range was
// converted before its range was checked (undefined behaviour).
TEST(Config, HugeNumbersAreRangeErrorsNotUndefinedBehaviour) {
    std::string err;
    for (const char *json : {R"({"workers": 1e300})", R"({"workers": -1e300})", R"({"shutdown_grace_ms": 9.3e18})"}) {
        EXPECT_FALSE(parse(json, err)) << json;
        EXPECT_NE(err.find("must be"), std::string::npos) << err;
    }
}

}  // namespace
}  // namespace aurora::host

