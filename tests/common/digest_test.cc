// File digests are the xxh3 of the file's bytes, whatever the mapping window.
#include "common/digest.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <fmt/format.h>

#include <algorithm>
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

// The digests are xxh3's whichever instruction set computes them: equal to the library's portable
// entry points over every length class xxh3 treats apart, whole and streamed in uneven pieces.
TEST(Xxh3Digest, EqualsThePortableXxh3AtEveryLength) {
  EXPECT_EQ(Xxh3Digest(""), "xxh3:2d06800538d394c2");
  const std::string bytes = RandomBytes((size_t{1} << 20) + 3);
  for (const size_t n : {size_t{0}, size_t{1}, size_t{3}, size_t{16}, size_t{17}, size_t{128}, size_t{129},
                         size_t{240}, size_t{241}, size_t{1000}, size_t{1024}, size_t{4099}, bytes.size()}) {
    const std::string_view part(bytes.data(), n);
    EXPECT_EQ(Xxh3_64(part), XXH3_64bits(part.data(), part.size())) << n;
    Xxh3Stream stream;
    for (size_t at = 0, piece = 1; at < n; at += piece, piece = piece * 3 + 1) {
      stream.Update(part.substr(at, std::min(piece, n - at)));
    }
    EXPECT_EQ(stream.Digest(), Xxh3Digest(part)) << n;
    EXPECT_EQ(Xxh3Digest(part), fmt::format("xxh3:{:016x}", XXH3_64bits(part.data(), part.size()))) << n;
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
