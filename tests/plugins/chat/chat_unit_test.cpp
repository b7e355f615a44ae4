// The chat plugin's pure parts: which presence events a room's changes
// become (PresenceCoalescer, where time can be chosen), and the presence
// JSON it sends.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "chat_protocol.h"
#include "presence_coalescer.h"

namespace aurora::chat {
namespace {

using Clock = PresenceCoalescer::Clock;
using std::chrono::milliseconds;

const Clock::time_point t0 = Clock::time_point() + std::chrono::hours(1);

std::vector<std::string> jsons(const std::vector<PresenceCoalescer::Event> &events) {
    std::vector<std::string> out;
    for (const auto &e : events) out.push_back(e.json);
    return out;
}

TEST(PresenceCoalescer, AJoinIsSentOnceItsWindowCloses) {
    PresenceCoalescer c(milliseconds(500));
    c.change(1, "r", true, "u1", "ann", t0);
    EXPECT_EQ(c.next_due(), t0 + milliseconds(500));
    EXPECT_TRUE(c.due(t0 + milliseconds(499)).empty());
    EXPECT_EQ(jsons(c.due(t0 + milliseconds(500))),
              std::vector<std::string>{R"({"type":"presence","room":"r","event":"join","user":"ann","userId":"u1"})"});
    EXPECT_FALSE(c.next_due());
    EXPECT_TRUE(c.due(Clock::time_point::max()).empty());
}

TEST(PresenceCoalescer, FlappingWithinAWindowCancelsOut) {
    PresenceCoalescer c(milliseconds(500));
    c.change(1, "r", true, "u1", "ann", t0);
    ASSERT_EQ(c.due(t0 + milliseconds(500)).size(), 1u);  // shown as present
    for (int i = 0; i < 100; ++i) {
        c.change(1, "r", false, "u1", "ann", t0 + milliseconds(600 + 2 * i));
        c.change(1, "r", true, "u1", "ann", t0 + milliseconds(601 + 2 * i));
    }
    EXPECT_TRUE(c.due(t0 + milliseconds(1100)).empty());  // net: no change
    EXPECT_EQ(c.cancelled(), 1u);
    // A join and a leave of a connection never shown: nothing either.
    c.change(2, "r", true, "u2", "bob", t0 + milliseconds(2000));
    c.change(2, "r", false, "u2", "bob", t0 + milliseconds(2001));
    EXPECT_TRUE(c.due(t0 + milliseconds(2500)).empty());
}

TEST(PresenceCoalescer, OnlyTheNetChangeOfEachConnectionIsSent) {
    PresenceCoalescer c(milliseconds(500));
    c.change(1, "r", true, "u1", "ann", t0);
    c.change(2, "r", true, "u2", "bob", t0);
    c.due(t0 + milliseconds(500));
    c.change(1, "r", false, "u1", "ann", t0 + milliseconds(600));  // ann leaves and stays away
    c.change(2, "r", false, "u2", "bob", t0 + milliseconds(601));  // bob comes back
    c.change(1, "r", true, "u1", "ann", t0 + milliseconds(602));
    c.change(1, "r", false, "u1", "ann", t0 + milliseconds(603));
    c.change(2, "r", true, "u2", "bob", t0 + milliseconds(604));
    EXPECT_EQ(jsons(c.due(t0 + milliseconds(1100))),
              std::vector<std::string>{R"({"type":"presence","room":"r","event":"leave","user":"ann","userId":"u1"})"});
    // ann is forgotten once shown as gone; a later join is news again.
    c.change(1, "r", true, "u1", "ann", t0 + milliseconds(2000));
    EXPECT_EQ(c.due(t0 + milliseconds(2500)).size(), 1u);
}

TEST(PresenceCoalescer, RoomsHaveTheirOwnWindows) {
    PresenceCoalescer c(milliseconds(500));
    c.change(1, "a", true, "u1", "ann", t0);
    c.change(1, "b", true, "u1", "ann", t0 + milliseconds(300));
    EXPECT_EQ(c.due(t0 + milliseconds(500)).size(), 1u);
    EXPECT_EQ(c.next_due(), t0 + milliseconds(800));
    auto later = c.due(t0 + milliseconds(800));
    ASSERT_EQ(later.size(), 1u);
    EXPECT_EQ(later[0].room, "b");
}

TEST(PresenceCoalescer, AZeroWindowSendsEachChangeAtOnce) {
    PresenceCoalescer c(milliseconds(0));
    c.change(1, "r", true, "u1", "ann", t0);
    EXPECT_EQ(c.due(t0).size(), 1u);
    c.change(1, "r", false, "u1", "ann", t0);
    EXPECT_EQ(c.due(t0).size(), 1u);
}

TEST(PresenceJson, SnapshotListsEachUserOnceWithTheTotal) {
    std::string a = presence_member_json("u1", "ann \"A\"", "rep:1");
    std::string b = presence_member_json("u1", "ann \"A\"", "rep:2");
    std::string c = presence_member_json("u2", "bob", "rep:3");
    std::vector<std::string_view> members{a, b, c, "not json"};
    EXPECT_EQ(presence_snapshot_json("r", members, 5, "7"),
              R"({"type":"presence","room":"r","users":[{"userId":"u1","user":"ann \"A\""},)"
              R"({"userId":"u2","user":"bob"}],"connections":5,"truncated":true,"ref":7})");
    EXPECT_EQ(presence_snapshot_json("r", {}, -1, {}), R"({"type":"presence","room":"r","users":[],"connections":0})");
}


// Reactions take one emoji: a pictograph with its modifiers, a ZWJ
// sequence, a flag, a keycap, a tag sequence; not text, not two emojis,
// not a modifier alone, not 5,000 of them.
TEST(ValidEmoji, OneEmojiSequenceOnly) {
    for (std::string_view ok : {"\U0001F44D", "\U0001F44D\U0001F3FD", "\u2764\uFE0F", "\U0001F1EB\U0001F1F7",
                                "1\uFE0F\u20E3", "#\u20E3", "\U0001F468\u200D\U0001F469\u200D\U0001F467",
                                "\U0001F3F4\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F",
                                "\u00A9", "\u2705"})
        EXPECT_TRUE(valid_emoji(ok)) << ok;
    std::string many;
    for (int i = 0; i < 5000; ++i) many += "\U0001F600";
    for (std::string_view bad : std::initializer_list<std::string_view>{"", "a", "1", "ab", ".*", "\u200D", "\uFE0F", "\U0001F3FD",
                                 "\U0001F600\U0001F600", "\U0001F600\u200D", "\U0001F1EB",
                                 "\U0001F1EB\U0001F1F7\U0001F1EB", "\U0001F3F4\U000E0067", "\U0001F600 ",
                                 std::string_view(many)})
        EXPECT_FALSE(valid_emoji(bad)) << bad;
}

TEST(ChangeEvents, CarryTheirIdTargetAndValue) {
    std::string edit = change_json("5-1", "r", "al", "u1", Change{"edit", "4-0", "new \"text\"", {}});
    EXPECT_EQ(edit, R"({"type":"edit","id":"5-1","room":"r","target":"4-0","user":"al","userId":"u1",)"
                    R"("text":"new \"text\"","ts":5})");
    EXPECT_EQ(envelope_id(edit), "5-1");
    std::string react = change_json("6-0", "r", "al", "u1", Change{"reaction", "4-0", "x", "remove"});
    EXPECT_EQ(react, R"({"type":"reaction","id":"6-0","room":"r","target":"4-0","user":"al","userId":"u1",)"
                     R"("emoji":"x","op":"remove","ts":6})");
    EXPECT_EQ(envelope_id(change_json("7-0", "r", "al", "u1", Change{"delete", "4-0", {}, {}})), "7-0");
    EXPECT_EQ(envelope_id(R"({"type":"typing","id":"1-0"})"), "");
}

}  // namespace
}  // namespace aurora::chat
