// The CLI is a client of the public C++ API: a file under src/cli includes only include/shardvec/
// headers and its own cli/ files. The few engine headers some commands still include are listed
// below by file; a new one fails this test, and so does a listed one that is no longer included
// (then drop it from the list).
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "support/test_util.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;

// Engine headers still included, per file. input_files.* reads the input formats and moves into
// format/ behind a public header; the others are the .npy reader, CEL type parsing and JSON/text
// helpers that have no public header yet.
const std::map<std::string, std::set<std::string>> kPending = {
    {"build_command.cc", {"common/status_macros.h", "common/text_util.h", "routing/cel/cel.h"}},
    {"cli_common.cc", {"common/file_util.h", "common/json_text.h", "common/text_util.h"}},
    {"read_commands.cc",
     {"common/file_util.h", "common/json_text.h", "common/status_macros.h", "common/text_util.h", "format/npy.h",
      "format/routing_json.h"}},
};

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
    const auto pending = kPending.count(name) ? kPending.at(name) : std::set<std::string>{};
    const std::set<std::string> includes = IncludesOf(entry.path());
    for (const std::string& header : includes) {
      const bool allowed = header.rfind("shardvec/", 0) == 0 || header.rfind("cli/", 0) == 0 ||
                           pending.count(header);
      EXPECT_TRUE(allowed) << "src/cli/" << name << " includes the engine header \"" << header
                           << "\"; the CLI uses only include/shardvec/ and src/cli/ headers";
    }
    for (const std::string& header : pending) {
      EXPECT_TRUE(includes.count(header)) << "src/cli/" << name << " no longer includes \"" << header
                                          << "\": remove it from kPending";
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
  EXPECT_FALSE(kPending.count("history_commands.cc"));
}

}  // namespace
}  // namespace shardvec
