// snapshot/ sits below read/ and write/: the reader's and the snapshot layer's sources include nothing
// from write/, and the snapshot layer nothing from read/.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "support/test_util.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;

// Every quoted include of the sources under src/<folder> that starts with one of `forbidden`.
std::vector<std::string> IncludesFrom(const std::string& folder, const std::vector<std::string>& forbidden) {
  std::vector<std::string> found;
  const fs::path dir = fs::path(SHARDVEC_SOURCE_DIR) / "src" / folder;
  EXPECT_TRUE(fs::is_directory(dir)) << dir;
  for (const auto& entry : fs::directory_iterator(dir)) {
    for (const std::string& header : testing::QuotedIncludes(entry.path())) {
      for (const std::string& prefix : forbidden) {
        if (header.rfind(prefix, 0) == 0) found.push_back(entry.path().filename().string() + ": " + header);
      }
    }
  }
  return found;
}

TEST(LayeringTest, ReadIncludesNothingFromWrite) {
  EXPECT_EQ(IncludesFrom("read", {"write/"}), std::vector<std::string>{});
}

TEST(LayeringTest, SnapshotIncludesNothingFromReadWriteOrTheCli) {
  EXPECT_EQ(IncludesFrom("snapshot", {"read/", "write/", "cli/"}), std::vector<std::string>{});
}

}  // namespace
}  // namespace shardvec
