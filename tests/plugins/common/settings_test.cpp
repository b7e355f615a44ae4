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

struct Bound {
    int64_t batch = 0;
    size_t small = 0;
    int narrow = 0;
    std::string stream;
    bool strict = true;
    double ratio = 0;
    std::vector<std::string> origins;
};
const Field<Bound> kFields[] = {
    {{"batch", Setting::Int, "50", "entries per read", 1, 10000}, &Bound::batch},
    {{"small", Setting::Int, "3", "a size", 0, 100}, &Bound::small},
    {{"narrow", Setting::Int, "-4", "an int", -10, 10}, &Bound::narrow},
    {{"stream", Setting::String, "\"chat:messages\"", "the stream"}, &Bound::stream},
    {{"strict", Setting::Bool, "false", "be strict"}, &Bound::strict},
    {{"ratio", Setting::Number, "0.5", "a ratio", 0, 1}, &Bound::ratio},
    {{"origins", Setting::StringList, "[]", "allowed origins"}, &Bound::origins},
};

TEST(Fields, FillTheStructFromDefaultsAndConfig) {
    std::string err;
    std::optional<Bound> b = parse_settings(s(R"({"batch": 7, "origins": ["a"], "ratio": 0.25})"), kFields, err);
    ASSERT_TRUE(b) << err;
    EXPECT_EQ(b->batch, 7);
    EXPECT_EQ(b->small, 3u);
    EXPECT_EQ(b->narrow, -4);
    EXPECT_EQ(b->stream, "chat:messages");
    EXPECT_FALSE(b->strict);
    EXPECT_DOUBLE_EQ(b->ratio, 0.25);
    EXPECT_EQ(b->origins, (std::vector<std::string>{"a"}));
}

TEST(Fields, ConfigErrorsAsForTheTable) {
    std::string err;
    EXPECT_FALSE(parse_settings(s(R"({"small": 101})"), kFields, err));
    EXPECT_NE(err.find("\"small\" must be between 0 and 100"), std::string::npos) << err;
    EXPECT_FALSE(parse_settings(s(R"({"stream": 1})"), kFields, err));
    EXPECT_NE(err.find("\"stream\" must be a string"), std::string::npos) << err;
}

struct Mismatch {
    std::string batch;
};
const Field<Mismatch> kWrong[] = {{{"batch", Setting::Int, "50", "entries per read", 1, 10000}, &Mismatch::batch}};

TEST(Fields, AFieldOfTheWrongTypeIsTheTablesErrorNotACrash) {
    std::string err;
    EXPECT_FALSE(parse_settings(s("{}"), kWrong, err));
    EXPECT_NE(err.find("\"batch\": its field in the plugin does not have the setting's type"), std::string::npos)
        << err;
}

TEST(Fields, MarkdownFromTheSameFields) {
    std::string md = Settings::markdown(settings_of<Bound>(kFields));
    EXPECT_NE(md.find("| `batch` | an integer | `50` | entries per read |"), std::string::npos) << md;
}

}  // namespace
}  // namespace aurora::plugin
