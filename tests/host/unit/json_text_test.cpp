#include <gtest/gtest.h>

#include "json_text.h"

namespace aurora::host {
namespace {

TEST(Utf8, AcceptsWellFormed) {
    EXPECT_TRUE(valid_utf8(""));
    EXPECT_TRUE(valid_utf8("plain ascii that is longer than eight bytes"));
    EXPECT_TRUE(valid_utf8("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80"));  // é € 😀
    EXPECT_TRUE(valid_utf8("\xF4\x8F\xBF\xBF"));                          // U+10FFFF
}

TEST(Utf8, RejectsMalformed) {
    const char *bad[] = {
        "\x80",              // lone continuation
        "\xC3",              // truncated
        "\xC0\xAF",          // overlong '/'
        "\xE0\x80\xAF",      // overlong
        "\xED\xA0\x80",      // surrogate U+D800
        "\xF4\x90\x80\x80",  // > U+10FFFF
        "\xF5\x80\x80\x80",  // invalid lead
        "\xFF",
        "abcdefgh\xE2\x82",  // truncated after the fast path
    };
    for (const char *s : bad) EXPECT_FALSE(valid_utf8(s)) << testing::PrintToString(s);
}

TEST(JsonString, EscapesAndAlwaysValid) {
    EXPECT_EQ(json_string("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\"");
    EXPECT_EQ(json_string("\xC3\xA9"), "\"\xC3\xA9\"");
    EXPECT_EQ(json_string("x\xFFy"), "\"x\xEF\xBF\xBDy\"");  // replaced, still valid UTF-8
    EXPECT_TRUE(parse_json(json_string("\x01\x1f</script>")));
}

TEST(ParseJson, ExactlyOneValue) {
    EXPECT_TRUE(parse_json("{\"a\":1}  \n"));
    EXPECT_FALSE(parse_json("{\"a\":1} {}"));
    EXPECT_FALSE(parse_json("{\"a\":"));
    EXPECT_FALSE(parse_json(""));
    std::string nul_inside("{\"a\":1}\0x", 9);
    EXPECT_FALSE(parse_json(nul_inside));
}

}  // namespace
}  // namespace aurora::host
