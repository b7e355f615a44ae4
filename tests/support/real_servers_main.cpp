// main() for GoogleTest binaries that use RealServers: the servers are started
// lazily by the first test that asks, and stopped here once every test ran.
#include <gtest/gtest.h>

#include "real_servers.h"

namespace {
class RealServersEnvironment final : public ::testing::Environment {
public:
    void TearDown() override { aurora::testing::RealServers::stop_all(); }
};
}  // namespace

int main(int argc, char **argv) {
    ::testing::InitGoogleTest(&argc, argv);
    ::testing::AddGlobalTestEnvironment(new RealServersEnvironment);  // gtest takes ownership
    return RUN_ALL_TESTS();
}
