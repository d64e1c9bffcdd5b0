// The CLI is a client of the public C++ API: a file under src/cli includes only include/shardvec/
// headers and its own cli/ files.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "support/test_util.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;

std::set<std::string> IncludesOf(const fs::path& file) {
  const std::vector<std::string> list = testing::QuotedIncludes(file);
  return {list.begin(), list.end()};
}

TEST(CliHeadersTest, CliFilesIncludeOnlyPublicHeadersAndTheirOwn) {
  const fs::path dir = fs::path(SHARDVEC_SOURCE_DIR) / "src" / "cli";
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (entry.path().extension() != ".cc" && entry.path().extension() != ".h") continue;
    ++files;
    for (const std::string& header : IncludesOf(entry.path())) {
      const bool allowed = header.rfind("shardvec/", 0) == 0 || header.rfind("cli/", 0) == 0;
      EXPECT_TRUE(allowed) << "src/cli/" << name << " includes the engine header \"" << header
                           << "\"; the CLI uses only include/shardvec/ and src/cli/ headers";
    }
  }
  EXPECT_GE(files, 8) << "src/cli not found at " << dir;
}

TEST(CliHeadersTest, TheHistoryRollbackAndCleanupCommandsUseOnlyThePublicApi) {
  const fs::path file = fs::path(SHARDVEC_SOURCE_DIR) / "src" / "cli" / "history_commands.cc";
  const std::set<std::string> includes = IncludesOf(file);
  EXPECT_TRUE(includes.count("shardvec/admin.h"));
  for (const std::string& header : includes) {
    EXPECT_TRUE(header.rfind("shardvec/", 0) == 0 || header.rfind("cli/", 0) == 0) << header;
  }
}

}  // namespace
}  // namespace shardvec
