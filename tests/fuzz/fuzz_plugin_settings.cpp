// Plugin settings (plugins/common/settings.h) against each plugin's table.
// The first byte picks the table; the rest is the plugin's "config" JSON:
//   0  ratelimit: ratelimit::parse_config (its table is exported)
//   1  auth: auth::load_config, with a strong secret
//   2  auth: auth::load_config, with no secret (dev mode makes one up)
//   3  ingest: ingest::load_settings, then mongo_url_with_timeouts on the
//      JSON text as a URL
//   4  a table built here that covers every Setting type, bounded and
//      unbounded: the chat plugin's table is private to chat_plugin.cpp, so
//      its shapes (strings, bools, ints with bounds up to 1e12) are copied
//      here together with Number, StringList and a required setting.
// Every value a parse returns is read back through the typed accessors.
#include <string>
#include <vector>

#include "auth_config.h"
#include "fuzz_check.h"
#include "ingest_settings.h"
#include "json.h"
#include "ratelimit_settings.h"
#include "settings.h"

using aurora::plugin::Setting;
using aurora::plugin::Settings;

namespace {

const Setting kEveryType[] = {
    {"default_room", Setting::String, "\"general\"", "a string with a default"},
    {"auto_join", Setting::Bool, "true", "a bool"},
    {"max_rooms", Setting::Int, "32", "a bounded int", 1, 1024},
    {"stream_maxlen", Setting::Int, "1000000", "an int with wide bounds", 0, 1e12},
    {"unbounded", Setting::Int, "7", "an int with the default bounds"},
    {"ratio", Setting::Number, "0.5", "a bounded number", 0, 1},
    {"any_number", Setting::Number, "1e3", "a number with the default bounds"},
    {"types", Setting::StringList, "[\"message\"]", "a list of strings"},
    {"required", Setting::String, nullptr, "a required string"},
};

// Reads every setting of `table` through its accessor and checks the bounds.
void read_back(const Settings &s, std::span<const Setting> table) {
    for (const Setting &e : table) {
        switch (e.type) {
        case Setting::String: (void)s.string(e.name); break;
        case Setting::Bool: (void)s.boolean(e.name); break;
        case Setting::Number: {
            double v = s.number(e.name);
            FUZZ_CHECK(v >= e.min && v <= e.max);
            break;
        }
        case Setting::Int: {
            double v = s.number(e.name);
            FUZZ_CHECK(v >= e.min && v <= e.max);
            int64_t i = s.integer(e.name);
            FUZZ_CHECK(static_cast<double>(i) == v);
            break;
        }
        case Setting::StringList: (void)s.list(e.name); break;
        }
    }
}

void parse_table(std::string_view json, std::span<const Setting> table) {
    std::string error;
    std::optional<Settings> s = Settings::parse(aurora::plugin::str(json), table, error);
    if (!s) {
        FUZZ_CHECK(!error.empty());
        return;
    }
    read_back(*s, table);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    const uint8_t which = data[0] % 5;
    std::string_view json = fuzz_bytes(data + 1, size - 1);
    std::string error;
    switch (which) {
    case 0: {
        parse_table(json, aurora::ratelimit::settings_table());
        auto c = aurora::ratelimit::parse_config(aurora::plugin::str(json), "redis://127.0.0.1:6379/0", error);
        if (!c) {
            FUZZ_CHECK(!error.empty());
            break;
        }
        FUZZ_CHECK(!c->key_prefix.empty() && c->key_prefix.size() <= 64);
        FUZZ_CHECK(!c->redis_url.empty() && c->max_batch >= 1);
        for (const auto *l : {&c->room, &c->user, &c->control, &c->connect, &c->abuse})
            FUZZ_CHECK(l->max >= 0 && l->window_ms >= 1);
        break;
    }
    case 1:
    case 2: {
        parse_table(json, aurora::auth::auth_settings());
        std::vector<std::string> warnings;
        const std::string secret = which == 1 ? "fuzz-secret-with-32-bytes-0123456789" : "";
        auto c = aurora::auth::load_config(aurora::plugin::str(json), secret, error, warnings);
        if (!c) {
            FUZZ_CHECK(!error.empty());
            break;
        }
        FUZZ_CHECK(!c->secret.empty() && c->workers >= 1 && c->login_backoff_max_ms >= c->login_backoff_base_ms);
        FUZZ_CHECK(c->register_max_concurrent <= std::max(1, c->workers - 1));
        if (c->cors_any) FUZZ_CHECK(c->dev_mode);
        break;
    }
    case 3: {
        parse_table(json, aurora::ingest::ingest_settings());
        auto c = aurora::ingest::load_settings(aurora::plugin::str(json), error);
        if (!c) {
            FUZZ_CHECK(!error.empty());
        } else {
            FUZZ_CHECK(!c->stream.empty() && c->stream != c->dead_letter_stream);
            FUZZ_CHECK(c->history_default_limit <= c->history_max_limit);
            FUZZ_CHECK(c->consumer_reap_idle_ms == 0 || c->consumer_reap_idle_ms > c->block_ms + c->redis_timeout_ms);
        }
        std::string url = aurora::ingest::mongo_url_with_timeouts(std::string(json), 2000, 10000);
        FUZZ_CHECK(url.starts_with(json));
        break;
    }
    default:
        parse_table(json, kEveryType);
        break;
    }
    return 0;
}
