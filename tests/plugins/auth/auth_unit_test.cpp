// The pure pieces of the auth plugin, in process: token verification and
// issue, password hashing, request bodies, the secret policy.
#include <gtest/gtest.h>

#include "auth_config.h"
#include "credentials.h"
#include "jwt_issue.h"
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

}  // namespace
}  // namespace aurora::auth
