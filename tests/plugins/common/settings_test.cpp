#include <gtest/gtest.h>

#include <cstring>

#include "settings.h"

namespace aurora::plugin {
namespace {

const Setting kTable[] = {
    {"batch", Setting::Int, "50", "entries per read", 1, 10000},
    {"stream", Setting::String, "\"chat:messages\"", "the stream"},
    {"strict", Setting::Bool, "false", "be strict"},
    {"origins", Setting::StringList, "[]", "allowed origins"},
    {"secret", Setting::String, nullptr, "required"},
};

aurora_str s(const char *t) { return aurora_str{t, std::strlen(t)}; }

TEST(Settings, DefaultsAndValues) {
    std::string err;
    auto v = Settings::parse(s(R"({"secret": "x", "batch": 7, "origins": ["a", "b"]})"), kTable, err);
    ASSERT_TRUE(v) << err;
    EXPECT_EQ(v->integer("batch"), 7);
    EXPECT_EQ(v->string("stream"), "chat:messages");
    EXPECT_FALSE(v->boolean("strict"));
    EXPECT_EQ(v->list("origins"), (std::vector<std::string>{"a", "b"}));
}

TEST(Settings, ErrorsNameTheSetting) {
    const std::pair<const char *, const char *> cases[] = {
        {R"({"secret": "x", "bacth": 1})", "unknown setting \"bacth\""},
        {R"({"batch": 1})", "\"secret\" is required"},
        {R"({"secret": "x", "batch": "1"})", "\"batch\" must be an integer"},
        {R"({"secret": "x", "batch": 1.5})", "\"batch\" must be an integer"},
        {R"({"secret": "x", "batch": 0})", "\"batch\" must be between 1 and 10000"},
        {R"({"secret": "x", "origins": [1]})", "\"origins\" must be an array of strings"},
        {R"({"secret": 5})", "\"secret\" must be a string"},
        {R"([])", "must be a JSON object"},
    };
    for (const auto &[json, expected] : cases) {
        std::string err;
        EXPECT_FALSE(Settings::parse(s(json), kTable, err)) << json;
        EXPECT_NE(err.find(expected), std::string::npos) << json << " -> " << err;
    }
}

TEST(Settings, MarkdownTable) {
    std::string md = Settings::markdown(kTable);
    EXPECT_NE(md.find("| `batch` | an integer | `50` | entries per read |"), std::string::npos) << md;
    EXPECT_NE(md.find("| `secret` | a string | required |"), std::string::npos) << md;
}

}  // namespace
}  // namespace aurora::plugin
