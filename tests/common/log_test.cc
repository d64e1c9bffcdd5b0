// Log lines as rendered: JSON (one object, escaped by nlohmann json) and the human text form.
#include "common/log.h"

#include <gtest/gtest.h>

namespace shardvec {
namespace {

TEST(LogFormatTest, JsonLineHasFixedKeysFirstAndEscapesValues) {
  const std::string line = FormatLogLine(LogFormat::kJson, "2026-12-01T10:00:00.000001Z", LogLevel::kWarning,
                                         "publish_conflict",
                                         {{"run_id", "r\"1\n"}, {"attempts", 8}, {"ok", false}, {"ratio", 0.5}});
  EXPECT_EQ(line,
            "{\"ts\":\"2026-12-01T10:00:00.000001Z\",\"level\":\"warning\",\"event\":\"publish_conflict\","
            "\"attempts\":8,\"ok\":false,\"ratio\":0.5,\"run_id\":\"r\\\"1\\n\"}");
  const auto parsed = nlohmann::json::parse(line);
  EXPECT_EQ(parsed["run_id"], "r\"1\n");
}

TEST(LogFormatTest, JsonLineSurvivesControlBytesInvalidUtf8AndFixedKeyNames) {
  const std::string line = FormatLogLine(LogFormat::kJson, "t", LogLevel::kError, "e\x01",
                                         {{"key", std::string("bad \xff byte")}, {"event", "shadow"}});
  EXPECT_EQ(line, "{\"ts\":\"t\",\"level\":\"error\",\"event\":\"e\\u0001\",\"field.event\":\"shadow\","
                  "\"key\":\"bad \xef\xbf\xbd byte\"}");
  EXPECT_NO_THROW((void)nlohmann::json::parse(line));
}

TEST(LogFormatTest, TextLineReadsAsASentence) {
  EXPECT_EQ(FormatLogLine(LogFormat::kText, "t", LogLevel::kWarning, "warning", {{"message", "disk full"}}),
            "shardvec: warning: disk full");
  EXPECT_EQ(FormatLogLine(LogFormat::kText, "t", LogLevel::kInfo, "vector_write_completed",
                          {{"run_id", "r1"}, {"total_vectors", 200}}),
            "shardvec: info: vector_write_completed: run_id=r1 total_vectors=200");
  EXPECT_EQ(FormatLogLine(LogFormat::kText, "t", LogLevel::kError, "shard_verification_failed",
                          {{"message", "digest differs"}, {"shard_id", 3}}),
            "shardvec: error: shard_verification_failed: digest differs shard_id=3");
}

}  // namespace
}  // namespace shardvec
