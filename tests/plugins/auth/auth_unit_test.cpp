// The pure pieces of the auth plugin, in process: token verification and
// issue, password hashing, request bodies, the secret policy, the login
// backoff schedule, the per-address in-progress limit.
#include <gtest/gtest.h>

#include "auth_config.h"
#include "credentials.h"
#include "inflight_limit.h"
#include "jwt_issue.h"
#include "login_throttle.h"
#include "token_verifier.h"
#include "password_hash.h"

namespace aurora::auth {
namespace {

using plugin::verify_token;
using plugin::VerifiedToken;

const std::string kSecret = "unit-test-secret-0123456789-abcdefghij";
constexpr int64_t kNow = 1704936000;

TEST(JwtTest, IssuedTokenVerifies) {
    auto token = issue_token(kSecret, JWT_ALG_HS256, "507f1f77bcf86cd799439011", "alice", kNow, 86400);
    ASSERT_TRUE(token);
    VerifiedToken v = verify_token(*token, kSecret, JWT_ALG_HS256, kNow + 10, 30);
    ASSERT_TRUE(v.ok) << v.error;
    EXPECT_EQ(v.user_id, "507f1f77bcf86cd799439011");
    EXPECT_EQ(v.username, "alice");
    EXPECT_EQ(v.exp, kNow + 86400);
}

TEST(JwtTest, ExpiryAndLeeway) {
    auto token = issue_token(kSecret, JWT_ALG_HS256, "u1", "alice", kNow, 60);
    ASSERT_TRUE(token);
    EXPECT_TRUE(verify_token(*token, kSecret, JWT_ALG_HS256, kNow + 60 + 29, 30).ok);
    VerifiedToken late = verify_token(*token, kSecret, JWT_ALG_HS256, kNow + 60 + 30, 30);
    EXPECT_FALSE(late.ok);
    EXPECT_EQ(late.error, "token expired");
    EXPECT_FALSE(verify_token(*token, kSecret, JWT_ALG_HS256, kNow + 61, 0).ok);
}

TEST(JwtTest, AlgorithmIsPinnedAndSecretMatters) {
    auto hs512 = issue_token(kSecret, JWT_ALG_HS512, "u1", "alice", kNow, 60);
    ASSERT_TRUE(hs512);
    EXPECT_EQ(verify_token(*hs512, kSecret, JWT_ALG_HS256, kNow, 30).error, "unexpected algorithm");
    EXPECT_TRUE(verify_token(*hs512, kSecret, JWT_ALG_HS512, kNow, 30).ok);
    auto hs256 = issue_token(kSecret, JWT_ALG_HS256, "u1", "alice", kNow, 60);
    EXPECT_FALSE(verify_token(*hs256, kSecret + "x", JWT_ALG_HS256, kNow, 30).ok);
}

TEST(JwtTest, AlgNoneIsRefused) {
    // {"alg":"none","typ":"JWT"} . {"userId":"u1","username":"a","exp":9999999999} .
    const std::string none =
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."
        "eyJ1c2VySWQiOiJ1MSIsInVzZXJuYW1lIjoiYSIsImV4cCI6OTk5OTk5OTk5OX0.";
    EXPECT_FALSE(verify_token(none, kSecret, JWT_ALG_HS256, kNow, 30).ok);
}

TEST(JwtTest, MalformedTokensAreRefused) {
    for (const char *t : {"", "abc", "a.b", "a.b.c", "a.b.c.d", "ä.b.c", "a b.c.d"})
        EXPECT_FALSE(verify_token(t, kSecret, JWT_ALG_HS256, kNow, 30).ok) << t;
}

TEST(PasswordHashTest, BcryptRoundTrip) {
    auto h = hash_password("correct horse", HashScheme::Bcrypt, 4);
    ASSERT_TRUE(h);
    EXPECT_EQ(h->rfind("$2b$04$", 0), 0u) << *h;
    EXPECT_TRUE(verify_password("correct horse", *h));
    EXPECT_FALSE(verify_password("correct horsf", *h));
    auto again = hash_password("correct horse", HashScheme::Bcrypt, 4);
    EXPECT_NE(*h, *again);  // a fresh salt each time
}

TEST(PasswordHashTest, YescryptRoundTrip) {
    auto h = hash_password("correct horse", HashScheme::Yescrypt, 1);
    ASSERT_TRUE(h);
    EXPECT_EQ(h->rfind("$y$", 0), 0u) << *h;
    EXPECT_TRUE(verify_password("correct horse", *h));
    EXPECT_FALSE(verify_password("wrong horse", *h));
}

TEST(PasswordHashTest, MalformedStoredHashNeverMatches) {
    EXPECT_FALSE(verify_password("x", ""));
    EXPECT_FALSE(verify_password("x", "plaintext"));
    EXPECT_FALSE(verify_password("x", "$2b$10$short"));
    EXPECT_FALSE(verify_password(std::string("a\0b", 3), "$2b$04$abcdefghijklmnopqrstuu"));
}

TEST(PasswordHashTest, ConstantTimeEqual) {
    EXPECT_TRUE(constant_time_equal("abc", "abc"));
    EXPECT_FALSE(constant_time_equal("abc", "abd"));
    EXPECT_FALSE(constant_time_equal("abc", "abcd"));
    EXPECT_TRUE(constant_time_equal("", ""));
}

TEST(CredentialsTest, Rules) {
    EXPECT_TRUE(parse_credentials(R"({"username":"a.b-c_9","password":"12345678"})").ok);
    EXPECT_EQ(parse_credentials(R"({"username":{"$ne":null},"password":"12345678"})").error,
              "username and password must be strings");
    EXPECT_EQ(parse_credentials(R"({"username":"abc"})").error, "Missing fields");
    EXPECT_EQ(parse_credentials("{").error, "Invalid JSON");
    EXPECT_FALSE(parse_credentials(R"({"username":"abc","password":"1234567"})").ok);
    EXPECT_FALSE(parse_credentials(R"({"username":"abc","password":"12345678\u0000"})").ok);
    EXPECT_FALSE(valid_username("ab"));
    EXPECT_TRUE(valid_username(std::string(32, 'a')));
    EXPECT_FALSE(valid_username(std::string(33, 'a')));
}

TEST(CredentialsTest, BodyOverFourKiBIsRefusedUnparsed) {
    // The largest valid body: both strings fully \u-escaped.
    std::string name, pass;
    for (int i = 0; i < 32; ++i) name += "\\u0061";
    for (int i = 0; i < 128; ++i) pass += "\\u0062";
    const std::string biggest = R"({"username":")" + name + R"(","password":")" + pass + R"("})";
    ASSERT_LT(biggest.size(), kMaxBodyBytes);
    EXPECT_TRUE(parse_credentials(biggest).ok) << parse_credentials(biggest).error;
    std::string padded = biggest;
    padded.insert(1, kMaxBodyBytes, ' ');  // still valid JSON
    Credentials c = parse_credentials(padded);
    EXPECT_FALSE(c.ok);
    EXPECT_EQ(c.status, 413);
    EXPECT_EQ(c.error, "Body too large");
    EXPECT_EQ(parse_credentials("{").status, 400);
}

TEST(SecretPolicyTest, WeakSecrets) {
    EXPECT_TRUE(weak_secret_reason(""));
    EXPECT_TRUE(weak_secret_reason("change-me"));
    EXPECT_TRUE(weak_secret_reason("CHANGE-ME"));
    EXPECT_TRUE(weak_secret_reason("use-strong-random-secret-minimum-32-characters"));
    EXPECT_TRUE(weak_secret_reason(std::string(31, 'k')));
    EXPECT_TRUE(weak_secret_reason(std::string(64, 'k')));
    EXPECT_FALSE(weak_secret_reason(kSecret));
}

TEST(SecretPolicyTest, LoadConfigRefusesWeakSecretOutsideDevMode) {
    std::string err;
    std::vector<std::string> warnings;
    EXPECT_FALSE(load_config(AURORA_STR_LIT("{}"), "change-me", err, warnings));
    EXPECT_NE(err.find("dev_mode"), std::string::npos) << err;
    auto dev = load_config(AURORA_STR_LIT(R"({"dev_mode":true})"), "", err, warnings);
    ASSERT_TRUE(dev);
    EXPECT_GE(dev->secret.size(), kMinSecretBytes);
    EXPECT_FALSE(warnings.empty());
}

TEST(LoginBackoffTest, DoublesAfterTheFreeFailuresUpToTheCap) {
    ThrottlePolicy p;
    p.free_failures = 5;
    p.backoff_base_ms = 1000;
    p.backoff_max_ms = 60000;
    for (int64_t n = 0; n < 5; ++n) EXPECT_EQ(p.backoff_ms(n), 0) << n;
    EXPECT_EQ(p.backoff_ms(5), 1000);
    EXPECT_EQ(p.backoff_ms(6), 2000);
    EXPECT_EQ(p.backoff_ms(7), 4000);
    EXPECT_EQ(p.backoff_ms(10), 32000);
    EXPECT_EQ(p.backoff_ms(11), 60000);
    EXPECT_EQ(p.backoff_ms(1000000), 60000);  // no overflow
    p.backoff_max_ms = 86400000;
    EXPECT_EQ(p.backoff_ms(INT64_MAX), 86400000);
}

TEST(InFlightLimitTest, PerAddressAndReleasedWithTheTicket) {
    InFlightLimit limit(2);
    auto a1 = limit.acquire("10.0.0.1"), a2 = limit.acquire("10.0.0.1");
    ASSERT_TRUE(a1 && a2);
    EXPECT_FALSE(limit.acquire("10.0.0.1"));
    EXPECT_TRUE(limit.acquire("10.0.0.2"));  // another address is not affected (and releases at once)
    EXPECT_EQ(limit.in_progress("10.0.0.2"), 0u);
    auto copy = a1;  // a copied job shares its ticket
    a1.reset();
    EXPECT_FALSE(limit.acquire("10.0.0.1"));
    copy.reset();
    EXPECT_EQ(limit.in_progress("10.0.0.1"), 1u);
    EXPECT_TRUE(limit.acquire("10.0.0.1"));
    InFlightLimit unlimited(0);
    std::vector<InFlightLimit::TicketPtr> many;
    for (int i = 0; i < 100; ++i) many.push_back(unlimited.acquire("x"));
    EXPECT_TRUE(many.back());
}

TEST(ConfigTest, RegistrationsLeaveAWorkerForLogins) {
    std::string err;
    std::vector<std::string> warnings;
    auto c = load_config(AURORA_STR_LIT("{}"), kSecret, err, warnings);
    ASSERT_TRUE(c) << err;
    EXPECT_EQ(c->register_max_concurrent, 1);
    EXPECT_EQ(c->register_max_per_addr, 10);
    EXPECT_EQ(c->register_window_ms, 600000);
    EXPECT_FALSE(load_config(AURORA_STR_LIT(R"({"workers":2,"register_max_concurrent":2})"), kSecret, err, warnings));
    EXPECT_NE(err.find("register_max_concurrent"), std::string::npos) << err;
    EXPECT_TRUE(load_config(AURORA_STR_LIT(R"({"workers":4,"register_max_concurrent":3})"), kSecret, err, warnings));
    EXPECT_TRUE(load_config(AURORA_STR_LIT(R"({"workers":1,"register_max_concurrent":1})"), kSecret, err, warnings));
    EXPECT_FALSE(load_config(AURORA_STR_LIT(R"({"login_backoff_base_ms":5000,"login_backoff_max_ms":1000})"),
                             kSecret, err, warnings));
    // The old per-username lockout is gone: a config that still sets it is refused, not silently ignored.
    EXPECT_FALSE(load_config(AURORA_STR_LIT(R"({"login_max_failures_per_user":5})"), kSecret, err, warnings));
}

}  // namespace
}  // namespace aurora::auth
