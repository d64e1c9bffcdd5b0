// WriteExpositionFile: the collector's text lands whole at the path, with no staging file left.
#include <gtest/gtest.h>

#include <filesystem>

#include "shardvec/metrics.h"
#include "support/test_util.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;

int EntriesIn(const fs::path& dir) {
  int n = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir)) ++n;
  return n;
}

TEST(ExpositionFileTest, WritesTheExpositionAndReplacesAnOlderFile) {
  testing::TempDir dir;
  PrometheusCollector collector;
  collector.Emit(metric_events::kWriteStarted, {{"run_id", std::string("r1")}});
  const fs::path path = dir / "m.prom";
  testing::WriteText(path, "old text\n");
  ASSERT_TRUE(WriteExpositionFile(collector, path).ok());
  EXPECT_EQ(testing::ReadText(path), collector.Exposition());
  EXPECT_NE(testing::ReadText(path).find("shardvec_"), std::string::npos);
  EXPECT_EQ(EntriesIn(dir.path()), 1);  // the staged temp file was renamed, not left behind
}

TEST(ExpositionFileTest, AFolderThatDoesNotExistIsNotFoundNamingThePath) {
  testing::TempDir dir;
  PrometheusCollector collector;
  const Status st = WriteExpositionFile(collector, dir / "no" / "m.prom");
  EXPECT_EQ(st.code(), StatusCode::kNotFound) << st.message();
  EXPECT_NE(st.message().find("no/"), std::string::npos) << st.message();
  EXPECT_EQ(EntriesIn(dir.path()), 0);
}

TEST(ExpositionFileTest, ATargetThatIsAFolderIsAnErrorAndLeavesNoStagedFile) {
  testing::TempDir dir;
  fs::create_directory(dir / "m.prom");
  fs::create_directory(dir / "m.prom" / "inside");  // rename over a non-empty folder fails
  PrometheusCollector collector;
  const Status st = WriteExpositionFile(collector, dir / "m.prom");
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("m.prom"), std::string::npos) << st.message();
  EXPECT_EQ(EntriesIn(dir.path()), 1);
}

}  // namespace
}  // namespace shardvec
