// `--metrics-file` (Prometheus text written at exit) and SHARDVEC_LOG_FORMAT=json, run as a child process.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "support/test_util.h"

namespace shardvec {
namespace {
using testing::RunCli;
using testing::ShellQuote;

// Every line of a text exposition must be a comment or `name{labels} value`; returns the samples.
std::map<std::string, double> ParseExposition(const std::string& text) {
  static const std::regex sample(R"(^([a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})?) (\S+)$)");
  static const std::regex comment(R"(^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .*$)");
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_match(line, comment)) continue;
    EXPECT_TRUE(std::regex_match(line, m, sample)) << "not a sample line: " << line;
    if (!m.empty()) out[m[1]] = std::stod(m[3]);
  }
  return out;
}

class MetricsCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::WriteNpy(tmp_ / "v.npy", testing::RandomMatrix(150, 6, 3));
    testing::WriteNpy(tmp_ / "q.npy", testing::RandomMatrix(5, 6, 4));
  }
  std::string Store() const { return " --store " + ShellQuote((tmp_ / "store").string()); }
  std::string BuildArgs() const {
    return "build --quiet" + Store() + " --local-root " + ShellQuote((tmp_ / "lr").string()) + " --input " +
           ShellQuote((tmp_ / "v.npy").string()) + " --metric l2 --strategy lsh --num-dbs 4";
  }
  testing::TempDir tmp_;
};

TEST_F(MetricsCliTest, BuildAndSearchWriteCountsToTheMetricsFile) {
  const std::string build_prom = (tmp_ / "build.prom").string();
  auto b = RunCli(BuildArgs() + " --metrics-file " + ShellQuote(build_prom));
  ASSERT_EQ(b.exit_code, 0) << b.err;
  auto built = ParseExposition(testing::ReadText(build_prom));
  EXPECT_EQ(built["shardvec_vector_writes_total"], 1);
  EXPECT_EQ(built["shardvec_vector_vectors_written_total"], 150);
  EXPECT_EQ(built["shardvec_vector_shard_rows_total"], 150);
  EXPECT_EQ(built["shardvec_vector_write_seconds_count"], 1);
  EXPECT_EQ(built["shardvec_events_total{event=\"vector.write.started\"}"], 1);

  // Shards group members may write are downloaded into the cache (a folder store's others are read
  // in place), so the search below has downloads to count.
  for (const std::string& f : testing::ListFiles(tmp_ / "store")) {
    if (f.ends_with("shard.db")) {
      std::filesystem::permissions(tmp_ / "store" / f, std::filesystem::perms::group_write,
                                   std::filesystem::perm_options::add);
    }
  }
  const std::string search_prom = (tmp_ / "search.prom").string();
  // The flag also works before the subcommand.
  auto s = RunCli("--metrics-file " + ShellQuote(search_prom) + " search" + Store() + " --cache-dir " +
                  ShellQuote((tmp_ / "cache").string()) + " --query-file " + ShellQuote((tmp_ / "q.npy").string()) +
                  " --top-k 4 --num-probes 2 --json");
  ASSERT_EQ(s.exit_code, 0) << s.err;
  auto searched = ParseExposition(testing::ReadText(search_prom));
  EXPECT_EQ(searched["shardvec_vector_reader_initialized_total"], 1);
  EXPECT_EQ(searched["shardvec_vector_searches_total"], 5);
  EXPECT_EQ(searched["shardvec_vector_search_seconds_count"], 5);
  EXPECT_EQ(searched["shardvec_vector_search_seconds_bucket{le=\"+Inf\"}"], 5);
  EXPECT_EQ(searched["shardvec_vector_search_results_total"], 20);
  EXPECT_EQ(searched["shardvec_vector_shards_queried_total"], 10);  // 2 probes per query
  EXPECT_EQ(searched["shardvec_vector_writes_total"], 0);
  EXPECT_GE(searched["shardvec_vector_shard_downloads_total"], 1);
}

TEST_F(MetricsCliTest, AMetricsFileThatCannotBeWrittenIsAnErrorNamingTheFlag) {
  auto b = RunCli(BuildArgs() + " --metrics-file " + ShellQuote((tmp_ / "no" / "such" / "dir" / "m.prom").string()));
  EXPECT_EQ(b.exit_code, 1);
  EXPECT_NE(b.err.find("no/such/dir"), std::string::npos) << b.err;
  EXPECT_NE(b.err.find("--metrics-file"), std::string::npos) << b.err;
}

TEST_F(MetricsCliTest, JsonLogsAreOneObjectPerLineWithSpecEventNames) {
  auto b = testing::RunCommand("SHARDVEC_LOG_FORMAT=json " + ShellQuote(SHARDVEC_CLI_PATH) + " " + BuildArgs() +
                               " --run-id logged");
  ASSERT_EQ(b.exit_code, 0) << b.err;
  std::istringstream in(b.err);
  std::string line;
  std::map<std::string, nlohmann::json> by_event;
  while (std::getline(in, line)) {
    auto parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(parsed.is_object()) << "not a JSON object: " << line;
    ASSERT_TRUE(parsed.contains("ts") && parsed.contains("level") && parsed.contains("event")) << line;
    by_event[parsed["event"].get<std::string>()] = parsed;
  }
  ASSERT_TRUE(by_event.count("vector_write_completed")) << b.err;
  EXPECT_EQ(by_event["vector_write_completed"]["run_id"], "logged");
  EXPECT_EQ(by_event["vector_write_completed"]["total_vectors"], 150);
  EXPECT_EQ(by_event["vector_write_completed"]["level"], "info");
  ASSERT_TRUE(by_event.count("vector_manifest_published")) << b.err;
  // The default text form stays quiet about a successful build.
  auto quiet = RunCli(BuildArgs() + " --run-id quiet");
  ASSERT_EQ(quiet.exit_code, 0) << quiet.err;
  EXPECT_EQ(quiet.err, "");
}

}  // namespace
}  // namespace shardvec
