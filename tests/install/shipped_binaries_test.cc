// What ships (the shardvec CLI and libshardvec.a) holds no fault-injection hook: no environment
// variable a process could be crashed or failed through. The test build's CLI has one, which shows
// the search finds such a name where it is.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>

namespace shardvec {
namespace {

std::string Bytes(const char* path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

constexpr const char* kHookNames[] = {"SHARDVEC_FAULT_POINT", "SHARDVEC_FAULT_ACTION", "SHARDVEC_TEST_FAULT_FILE",
                                      "fault injected at"};

TEST(ShippedBinariesTest, TheCliAndTheLibraryHaveNoFaultHook) {
  for (const char* path : {SHARDVEC_CLI_PATH, SHARDVEC_CORE_LIB_PATH}) {
    const std::string bytes = Bytes(path);
    ASSERT_GT(bytes.size(), 100000u) << path;
    for (const char* name : kHookNames) EXPECT_EQ(bytes.find(name), std::string::npos) << name << " in " << path;
  }
}

TEST(ShippedBinariesTest, TheTestBuildsCliHasOne) {
  const std::string bytes = Bytes(SHARDVEC_FAULT_CLI_PATH);
  EXPECT_NE(bytes.find("SHARDVEC_FAULT_POINT"), std::string::npos);
}

}  // namespace
}  // namespace shardvec
