// The permission table of docs/rooms.md, whole, and the other pure rules.
#include <gtest/gtest.h>

#include "room_rules.h"

using namespace aurora::rooms;

namespace {

constexpr Role kRoles[] = {Role::None, Role::Member, Role::Admin, Role::Owner};

TEST(RoomRules, ReadIsForMembersOutsidePublicRooms) {
    for (Role r : kRoles) {
        EXPECT_TRUE(allowed(RoomType::Public, Action::Read, r));
        EXPECT_EQ(allowed(RoomType::Private, Action::Read, r), r != Role::None);
        EXPECT_EQ(allowed(RoomType::Direct, Action::Read, r), r != Role::None);
    }
}

TEST(RoomRules, TheTableOfPrivateRooms) {
    for (RoomType t : {RoomType::Public, RoomType::Private}) {
        EXPECT_FALSE(allowed(t, Action::Invite, Role::Member));
        EXPECT_TRUE(allowed(t, Action::Invite, Role::Admin));
        EXPECT_TRUE(allowed(t, Action::Invite, Role::Owner));
        EXPECT_FALSE(allowed(t, Action::Invite, Role::None));
        // Remove: only someone of a lower role.
        EXPECT_TRUE(allowed(t, Action::Remove, Role::Admin, Role::Member));
        EXPECT_FALSE(allowed(t, Action::Remove, Role::Admin, Role::Admin));
        EXPECT_FALSE(allowed(t, Action::Remove, Role::Admin, Role::Owner));
        EXPECT_TRUE(allowed(t, Action::Remove, Role::Owner, Role::Admin));
        EXPECT_FALSE(allowed(t, Action::Remove, Role::Owner, Role::Owner));
        EXPECT_FALSE(allowed(t, Action::Remove, Role::Member, Role::Member));
        EXPECT_FALSE(allowed(t, Action::Remove, Role::Owner, Role::None));
        // Roles: the owner, on anyone but itself.
        EXPECT_TRUE(allowed(t, Action::SetRole, Role::Owner, Role::Member));
        EXPECT_TRUE(allowed(t, Action::SetRole, Role::Owner, Role::Admin));
        EXPECT_FALSE(allowed(t, Action::SetRole, Role::Owner, Role::Owner));
        EXPECT_FALSE(allowed(t, Action::SetRole, Role::Admin, Role::Member));
        EXPECT_TRUE(allowed(t, Action::Update, Role::Admin));
        EXPECT_FALSE(allowed(t, Action::Update, Role::Member));
        EXPECT_TRUE(allowed(t, Action::Archive, Role::Owner));
        EXPECT_FALSE(allowed(t, Action::Archive, Role::Admin));
        EXPECT_TRUE(allowed(t, Action::Leave, Role::Member));
        EXPECT_TRUE(allowed(t, Action::Leave, Role::Admin));
        EXPECT_FALSE(allowed(t, Action::Leave, Role::Owner));
        EXPECT_FALSE(allowed(t, Action::Leave, Role::None));
    }
}

TEST(RoomRules, DirectRoomsHaveNoAdministration) {
    for (Role r : kRoles) {
        for (Action a : {Action::Invite, Action::Update, Action::Archive})
            EXPECT_FALSE(allowed(RoomType::Direct, a, r));
        for (Role t : kRoles) {
            EXPECT_FALSE(allowed(RoomType::Direct, Action::Remove, r, t));
            EXPECT_FALSE(allowed(RoomType::Direct, Action::SetRole, r, t));
        }
    }
    EXPECT_TRUE(allowed(RoomType::Direct, Action::Leave, Role::Member));
}

TEST(RoomRules, TitlesAndTopics) {
    std::string error;
    EXPECT_TRUE(valid_text("Team room", 1, 100, error));
    EXPECT_TRUE(valid_text("équipe – 日本", 1, 100, error));
    EXPECT_FALSE(valid_text("", 1, 100, error));
    EXPECT_TRUE(valid_text("", 0, 500, error));
    EXPECT_FALSE(valid_text(std::string(101, 'x'), 1, 100, error));
    EXPECT_TRUE(valid_text(std::string(100, 'x'), 1, 100, error));
    EXPECT_FALSE(valid_text("a\nb", 1, 100, error));
    EXPECT_EQ(error, "control characters are not allowed");
    EXPECT_FALSE(valid_text("tab\there", 1, 100, error));
    EXPECT_FALSE(valid_text("del\x7f", 1, 100, error));
    EXPECT_FALSE(valid_text("c1\xc2\x85", 1, 100, error));   // U+0085 NEL
    EXPECT_TRUE(valid_text("nbsp\xc2\xa0", 1, 100, error));  // U+00A0 is not a control
    // Counted in code points, not bytes: 100 three-byte characters fit.
    std::string wide;
    for (int i = 0; i < 100; ++i) wide += "\xe6\x97\xa5";
    EXPECT_TRUE(valid_text(wide, 1, 100, error));
    EXPECT_FALSE(valid_text(wide + "\xe6\x97\xa5", 1, 100, error));
}

TEST(RoomRules, OneDirectRoomPerPairInAnyOrder) {
    std::string ab = direct_room_id("64b000000000000000000001", "64b000000000000000000002");
    EXPECT_EQ(ab, direct_room_id("64b000000000000000000002", "64b000000000000000000001"));
    EXPECT_NE(ab, direct_room_id("64b000000000000000000001", "64b000000000000000000003"));
    EXPECT_EQ(ab.size(), 35u);
    EXPECT_EQ(ab.rfind("dm:", 0), 0u);
    // The separator keeps ("ab", "c") and ("a", "bc") apart.
    EXPECT_NE(direct_room_id("ab", "c"), direct_room_id("a", "bc"));
}

// A body that repeats a key is refused, as the host refuses such a frame: a
// copy left behind would speak for the route (a fuzzer found the first
// version dropping one copy of "type"). Keys the route owns are replaced.
TEST(RoomRules, TheRouteOwnsItsKeysAndNoKeyComesTwice) {
    const char *code = nullptr;
    auto r = rest_request("DELETE", "/api/rooms/r1/members/u2",
                          R"({"type":"x","ref":1,"room":"a","userId":"c","username":"e"})", code);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->type, "room_remove");
    EXPECT_EQ(r->frame, R"({"room":"r1","userId":"u2"})");
    EXPECT_FALSE(rest_request("DELETE", "/api/rooms/r1/members/u2", R"({"room":"a","room":"b"})", code));
    EXPECT_STREQ(code, "bad_json");
    EXPECT_FALSE(rest_request("POST", "/api/rooms", R"({"room":"a","title":"t","title":"u"})", code));
    EXPECT_STREQ(code, "bad_json");
    EXPECT_FALSE(rest_request("POST", "/api/rooms", "[1]", code));
    EXPECT_STREQ(code, "bad_json");
    EXPECT_FALSE(rest_request("GET", "/api/rooms/r1/nothing", "", code));
    EXPECT_STREQ(code, "not_found");
}

TEST(RoomRules, NamesRoundTrip) {
    for (Role r : {Role::Member, Role::Admin, Role::Owner}) EXPECT_EQ(parse_role(name_of(r)), r);
    for (RoomType t : {RoomType::Public, RoomType::Private, RoomType::Direct}) EXPECT_EQ(parse_type(name_of(t)), t);
    EXPECT_FALSE(parse_role("none"));
    EXPECT_FALSE(parse_role("Owner"));
    EXPECT_FALSE(parse_type("secret"));
}

}  // namespace
