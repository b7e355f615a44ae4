// libaurora_host driven through its C API only: create (port 0), run on a
// thread, answer HTTP, stop from another thread, destroy.
#include <aurora/embed.h>
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

namespace {

std::string http_get(int port, const char *path) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) {
        close(fd);
        return "connect failed";
    }
    std::string req = std::string("GET ") + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    if (send(fd, req.data(), req.size(), 0) != static_cast<ssize_t>(req.size())) {
        close(fd);
        return "send failed";
    }
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<size_t>(n));
    close(fd);
    return out;
}

TEST(Embed, CreateRunServeStopDestroy) {
    std::string cfg = std::string(R"({"listen": {"host": "127.0.0.1", "port": 0}, "log": {"level": "warn"},
        "plugins": [{"name": "echo", "path": ")") + AURORA_TEST_ECHO_PLUGIN + R"("}]})";
    char err[512] = "";
    int code = -1;
    aurora_host *h = aurora_host_create(cfg.data(), cfg.size(), err, sizeof err, &code);
    ASSERT_NE(h, nullptr) << err;
    EXPECT_EQ(code, AURORA_HOST_EXIT_OK);
    int port = aurora_host_port(h);
    ASSERT_GT(port, 0);

    int rc = -1;
    std::thread service([&] { rc = aurora_host_run(h); });
    std::string health = http_get(port, "/health");
    EXPECT_NE(health.find("HTTP/1.1 200"), std::string::npos) << health;
    EXPECT_NE(health.find("\"status\":\"ok\""), std::string::npos) << health;
    aurora_host_stop(h);
    service.join();
    EXPECT_EQ(rc, AURORA_HOST_EXIT_OK);
    aurora_host_destroy(h);
}

TEST(Embed, StopBeforeRunReturnsAtOnce) {
    const char cfg[] = R"({"listen": {"port": 0}, "log": {"level": "error"}})";
    aurora_host *h = aurora_host_create(cfg, sizeof cfg - 1, nullptr, 0, nullptr);
    ASSERT_NE(h, nullptr);
    aurora_host_stop(h);
    EXPECT_EQ(aurora_host_run(h), AURORA_HOST_EXIT_OK);
    aurora_host_destroy(h);
}

TEST(Embed, BadConfigAndBadPluginAreExitCode2WithAReason) {
    char err[512] = "";
    int code = -1;
    const char bad[] = R"({"listen": {"port": "x"}})";
    EXPECT_EQ(aurora_host_create(bad, sizeof bad - 1, err, sizeof err, &code), nullptr);
    EXPECT_EQ(code, AURORA_HOST_EXIT_BAD_CONFIG);
    EXPECT_NE(std::string(err).find("listen.port"), std::string::npos) << err;

    const char missing[] = R"({"listen": {"port": 0}, "plugins": [{"name": "nope", "path": "/nonexistent/nope.so"}]})";
    EXPECT_EQ(aurora_host_create(missing, sizeof missing - 1, err, sizeof err, &code), nullptr);
    EXPECT_EQ(code, AURORA_HOST_EXIT_BAD_CONFIG);
    EXPECT_NE(std::string(err).find("/nonexistent/nope.so"), std::string::npos) << err;
}

TEST(Embed, TakenPortIsExitCode1) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a), 0);
    ASSERT_EQ(listen(fd, 1), 0);
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len);
    std::string cfg = R"({"listen": {"host": "127.0.0.1", "port": )" + std::to_string(ntohs(a.sin_port)) +
                      R"(}, "log": {"level": "error"}})";
    char err[512] = "";
    int code = -1;
    EXPECT_EQ(aurora_host_create(cfg.data(), cfg.size(), err, sizeof err, &code), nullptr);
    EXPECT_EQ(code, AURORA_HOST_EXIT_FATAL);
    EXPECT_NE(std::string(err).find("cannot listen"), std::string::npos) << err;
    close(fd);
}

}  // namespace
