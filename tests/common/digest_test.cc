// File digests are the xxh3 of the file's bytes, whatever the mapping window.
#include "common/digest.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <string>

#include "support/test_util.h"

namespace shardvec {
namespace {

using testing::TempDir;

std::string RandomBytes(size_t n) {
  std::mt19937_64 rng(7);
  std::string bytes(n, '\0');
  for (char& c : bytes) c = static_cast<char>(rng());
  return bytes;
}

void WriteBytes(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

TEST(DigestFile, EqualsTheDigestOfTheBytesInEveryWindowSize) {
  TempDir dir;
  // Not a multiple of the page size, so the last window is partial.
  const std::string bytes = RandomBytes(3 * 4096 * 5 + 1234);
  WriteBytes(dir.path() / "f", bytes);
  for (size_t window : {size_t{4096}, size_t{3 * 4096}, size_t{5000}, size_t{1} << 20}) {
    auto got = DigestFile(dir.path() / "f", window);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(got->digest, Xxh3Digest(bytes)) << "window " << window;
    EXPECT_EQ(got->size, static_cast<int64_t>(bytes.size()));
  }
}

TEST(DigestFile, AnEmptyFileHasTheEmptyDigest) {
  TempDir dir;
  WriteBytes(dir.path() / "empty", "");
  auto got = DigestFile(dir.path() / "empty");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->digest, Xxh3Digest(""));
  EXPECT_EQ(got->size, 0);
}

TEST(DigestFile, AMissingFileIsAnErrorNamingIt) {
  TempDir dir;
  auto got = DigestFile(dir.path() / "absent.db");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kIOError);
  EXPECT_NE(got.status().message().find("absent.db"), std::string::npos);
}

}  // namespace
}  // namespace shardvec
