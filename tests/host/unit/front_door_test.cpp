#include <gtest/gtest.h>

#include "front_door.h"

namespace aurora::host {
namespace {

const char kHead[] =
    "GET /ws HTTP/1.1\r\n"
    "Host: 127.0.0.1\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "sec-websocket-protocol: Bearer.aaa.bbb.ccc\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "\r\n";

TEST(FrontDoor, TakesTheBearerSubprotocolOut) {
    Arrival a;
    ASSERT_TRUE(FrontDoor::rewrite_bearer(kHead, a));
    EXPECT_EQ(a.token, "aaa.bbb.ccc");
    EXPECT_EQ(a.echo, "Bearer.aaa.bbb.ccc");
    EXPECT_EQ(a.head.find("Bearer"), std::string::npos) << a.head;
    EXPECT_EQ(a.head.find("ec-websocket-protocol"), std::string::npos) << a.head;
    EXPECT_NE(a.head.find("Sec-WebSocket-Version: 13\r\n\r\n"), std::string::npos) << a.head;
}

TEST(FrontDoor, KeepsAuroraAndLetsLwsEchoIt) {
    std::string head = "GET / HTTP/1.1\r\nSec-WebSocket-Protocol: chat, aurora, Bearer.t1, Bearer.t2\r\n\r\n";
    Arrival a;
    ASSERT_TRUE(FrontDoor::rewrite_bearer(head, a));
    EXPECT_EQ(a.token, "t1");
    EXPECT_EQ(a.echo, "");
    EXPECT_NE(a.head.find("Sec-WebSocket-Protocol: aurora\r\n"), std::string::npos) << a.head;
}

TEST(FrontDoor, LeavesOtherRequestsAlone) {
    Arrival a;
    EXPECT_FALSE(FrontDoor::rewrite_bearer("GET /health HTTP/1.1\r\nHost: x\r\n\r\n", a));
    EXPECT_FALSE(FrontDoor::rewrite_bearer("GET / HTTP/1.1\r\nSec-WebSocket-Protocol: aurora\r\n\r\n", a));
    EXPECT_TRUE(a.head.empty());
}

}  // namespace
}  // namespace aurora::host
