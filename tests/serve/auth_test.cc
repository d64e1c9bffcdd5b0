// The bearer-token file and header check of `shardvec serve --auth-token-file`.
#include "serve/auth.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <string>

#include "shardvec/serve.h"
#include "support/test_util.h"

namespace shardvec::serve {
namespace {

std::string WriteFile(const testing::TempDir& dir, const std::string& name, const std::string& text, mode_t mode) {
  const std::string path = (dir / name).string();
  std::ofstream(path, std::ios::binary) << text;
  ::chmod(path.c_str(), mode);
  return path;
}

TEST(AuthTest, BearerTokenMatchesOnlyTheExactToken) {
  EXPECT_TRUE(BearerTokenMatches("Bearer s3cret", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("Bearer s3cre", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("Bearer s3cretX", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("Bearer s3creT", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("Basic s3cret", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("s3cret", "s3cret"));
}

TEST(AuthTest, ReadsAPrivateOneLineTokenFile) {
  testing::TempDir dir;
  Result<std::string> token = ReadAuthTokenFile(WriteFile(dir, "t", "abc.DEF-123\n", 0600), "--auth-token-file");
  ASSERT_TRUE(token.ok()) << token.status().message();
  EXPECT_EQ(*token, "abc.DEF-123");
}

TEST(AuthTest, RefusesTokenFilesThatAreNotUsable) {
  testing::TempDir dir;
  const auto refused = [](const std::string& path, const std::string& words) {
    Result<std::string> token = ReadAuthTokenFile(path, "--auth-token-file");
    ASSERT_FALSE(token.ok()) << path;
    EXPECT_NE(token.status().message().find("--auth-token-file"), std::string::npos) << token.status().message();
    EXPECT_NE(token.status().message().find(words), std::string::npos) << token.status().message();
  };
  refused((dir / "missing").string(), "not a readable file");
  refused(WriteFile(dir, "open", "abc\n", 0644), "is not private");
  refused(WriteFile(dir, "empty", "\n", 0600), "is empty");
  refused(WriteFile(dir, "two", "abc\ndef\n", 0600), "one line of visible ASCII");
  refused(WriteFile(dir, "space", "ab c\n", 0600), "one line of visible ASCII");
  refused(WriteFile(dir, "big", std::string(5000, 'a'), 0600), "at most 4096");
}

}  // namespace
}  // namespace shardvec::serve
