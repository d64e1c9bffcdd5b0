// The Arrow-free half of the Parquet/Arrow input module. Reading real Parquet and Arrow IPC files
// (written by pyarrow) is tested end to end through the CLI in tests/python/test_inputs.py.
#include "cli/arrow_input.h"

#include <gtest/gtest.h>

namespace shardvec {
namespace {

TEST(ArrowInputTest, KnowsTheFileNamesItReads) {
  for (const char* path : {"x.parquet", "dir.d/X.PARQUET", "a.pq", "t.arrow", "t.feather", "t.ipc"}) {
    EXPECT_TRUE(IsArrowInputPath(path)) << path;
  }
  for (const char* path : {"x.npy", "x.jsonl", "-", ".parquet", "parquet", "x.parquet.gz", "dir.parquet/x.npy"}) {
    EXPECT_FALSE(IsArrowInputPath(path)) << path;
  }
}

TEST(ArrowInputTest, ABuildWithoutArrowRefusesEveryFileSayingWhy) {
  if (ArrowInputAvailable()) GTEST_SKIP() << "this build reads Parquet/Arrow (tests/python/test_inputs.py)";
  Result<InputData> input = LoadArrowInput("x.parquet", ArrowInputColumns{});
  ASSERT_FALSE(input.ok());
  EXPECT_EQ(input.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(input.status().message().find("--input 'x.parquet': this shardvec was built without Apache Arrow"),
            std::string::npos)
      << input.status().message();
}

TEST(ArrowInputTest, AMissingFileIsNotFoundNamingIt) {
  if (!ArrowInputAvailable()) GTEST_SKIP() << "this build has no Arrow";
  Result<InputData> input = LoadArrowInput("/nonexistent/x.parquet", ArrowInputColumns{});
  ASSERT_FALSE(input.ok());
  EXPECT_EQ(input.status().code(), StatusCode::kNotFound) << input.status().ToString();
  EXPECT_EQ(input.status().message(), "--input '/nonexistent/x.parquet': file not found");
}

}  // namespace
}  // namespace shardvec
