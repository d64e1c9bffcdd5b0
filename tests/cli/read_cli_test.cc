// `shardvec search / info / shards / route / health` and rollback-then-search, run as a child process.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/test_util.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using testing::RunCli;
using testing::ShellQuote;

class ReadCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = testing::ClusteredMatrix(200, 6, 4, 17);
    testing::WriteNpy(tmp_ / "v.npy", data_);
    std::string payloads;
    for (int i = 0; i < 200; ++i) payloads += "{\"row\": " + std::to_string(i) + "}\n";
    testing::WriteText(tmp_ / "p.jsonl", payloads);
  }
  std::string StoreArgs() const {
    return " --store " + ShellQuote((tmp_ / "store").string()) + " --cache-dir " + ShellQuote((tmp_ / "cache").string());
  }
  testing::CommandResult Build(const std::string& run_id, const std::string& extra = "") {
    return RunCli("build --quiet --store " + ShellQuote((tmp_ / "store").string()) + " --local-root " +
                  ShellQuote((tmp_ / "lr").string()) + " --input " + ShellQuote((tmp_ / "v.npy").string()) +
                  " --payloads " + ShellQuote((tmp_ / "p.jsonl").string()) +
                  " --metric l2 --strategy cluster --num-dbs 4 --train-centroids --run-id " + run_id + extra);
  }
  std::string QueryOfRow(int64_t i) const {
    std::string q;
    for (int64_t j = 0; j < data_.cols; ++j) q += (j ? "," : "") + std::to_string(data_.row(i)[j]);
    return q;
  }
  Matrix data_;
  testing::TempDir tmp_;
};

TEST_F(ReadCliTest, SearchJsonPrintsOneLinePerQuery) {
  ASSERT_EQ(Build("r1").exit_code, 0);
  auto r = RunCli("search" + StoreArgs() + " --query " + QueryOfRow(42) + " --top-k 3 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json out = json::parse(r.out);
  ASSERT_EQ(out["results"].size(), 3u);
  EXPECT_EQ(out["results"][0]["id"], 42);
  EXPECT_LT(out["results"][0]["score"].get<double>(), 1e-3);
  EXPECT_EQ(out["results"][0]["payload"]["row"], 42);
  EXPECT_EQ(out["num_shards_queried"], 1);
  EXPECT_TRUE(out["latency_ms"].is_number());

  // A 2-D query file runs every row, in order.
  Matrix queries{3, 6, {}};
  for (int64_t i : {5, 77, 150}) queries.data.insert(queries.data.end(), data_.row(i), data_.row(i) + 6);
  testing::WriteNpy(tmp_ / "q.npy", queries);
  r = RunCli("search" + StoreArgs() + " --query-file " + ShellQuote((tmp_ / "q.npy").string()) +
             " --top-k 1 --num-probes 4 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<int64_t> firsts;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    json j = json::parse(line);
    EXPECT_EQ(j["num_shards_queried"], 4);
    firsts.push_back(j["results"][0]["id"]);
  }
  EXPECT_EQ(firsts, (std::vector<int64_t>{5, 77, 150}));

  // --shard-ids overrides routing.
  r = RunCli("search" + StoreArgs() + " --query " + QueryOfRow(42) + " --shard-ids 0,1,1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_LE(json::parse(r.out)["num_shards_queried"].get<int>(), 2);
}

TEST_F(ReadCliTest, BadQueriesExitOneWithAClearMessage) {
  ASSERT_EQ(Build("r1").exit_code, 0);
  // Exit 2 when the command line alone is wrong (a usage error), 1 when the snapshot or a file refuses it.
  struct Case { std::string args; std::string expect; int exit_code = 1; };
  std::vector<Case> cases = {
      {" --query 1,2,3", "query has 3 values, but the snapshot's dim is 6"},
      {" --query 1,2,x,4,5,6", "'x' is not one", 2},
      {" --query " + QueryOfRow(1) + " --top-k 5000", "top_k must be in 1..4096 (got 5000)"},
      {" --query " + QueryOfRow(1) + " --num-probes 0", "num_probes must be >= 1 (got 0)"},
      {" --query " + QueryOfRow(1) + " --shard-ids 9", "shard_ids contains 9, outside [0, 4)"},
      {" --query " + QueryOfRow(1) + " --shard-ids 1,x", "--shard-ids must be comma-separated integers; 'x'", 2},
      {"", "one of --query or --query-file is required", 2},
      // A query file that cannot be read is an error naming the flag and the file.
      {" --query-file " + ShellQuote((tmp_ / "absent.npy").string()), "--query-file: "},
      {" --query-file " + ShellQuote((tmp_ / "absent.npy").string()), "absent.npy"},
  };
  for (const auto& tc : cases) {
    auto r = RunCli("search" + StoreArgs() + tc.args);
    EXPECT_EQ(r.exit_code, tc.exit_code) << tc.args;
    EXPECT_NE(r.err.find(tc.expect), std::string::npos) << tc.args << "\n" << r.err;
  }
  auto missing = RunCli("search --store " + ShellQuote((tmp_ / "nowhere").string()) + " --query 1,2");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("No CURRENT pointer"), std::string::npos) << missing.err;
}

TEST_F(ReadCliTest, InfoShardsRouteAndHealth) {
  ASSERT_EQ(Build("r1").exit_code, 0);
  auto info = RunCli("info" + StoreArgs() + " --json");
  ASSERT_EQ(info.exit_code, 0) << info.err;
  json i = json::parse(info.out);
  EXPECT_EQ(i["run_id"], "r1");
  EXPECT_EQ(i["num_dbs"], 4);
  EXPECT_EQ(i["dim"], 6);
  EXPECT_EQ(i["metric"], "l2");
  EXPECT_EQ(i["sharding"], "cluster");
  EXPECT_EQ(i["total_vectors"], 200);

  auto shards = RunCli("shards" + StoreArgs() + " --json");
  ASSERT_EQ(shards.exit_code, 0) << shards.err;
  json s = json::parse(shards.out)["shards"];
  ASSERT_EQ(s.size(), 4u);
  int64_t total = 0;
  for (auto& d : s) total += d["vector_count"].get<int64_t>();
  EXPECT_EQ(total, 200);

  auto route = RunCli("route" + StoreArgs() + " --query " + QueryOfRow(3) + " --num-probes 3 --json");
  ASSERT_EQ(route.exit_code, 0) << route.err;
  EXPECT_EQ(json::parse(route.out)["shard_ids"].size(), 3u);

  auto healthy = RunCli("health" + StoreArgs() + " --staleness 1h --json");
  EXPECT_EQ(healthy.exit_code, 0) << healthy.err;
  EXPECT_EQ(json::parse(healthy.out)["status"], "healthy");
  auto stale = RunCli("health" + StoreArgs() + " --staleness 0s --json");
  EXPECT_EQ(stale.exit_code, 1);
  EXPECT_EQ(json::parse(stale.out)["status"], "degraded");
  EXPECT_EQ(RunCli("health" + StoreArgs() + " --staleness soon").exit_code, 2) << "a usage error";
}

TEST_F(ReadCliTest, RollbackThenSearchAnswersFromTheOlderSnapshot) {
  ASSERT_EQ(Build("old").exit_code, 0);
  // The newer snapshot stores a different vector set: every vector shifted far away.
  for (float& v : data_.data) v += 1000.0f;
  testing::WriteNpy(tmp_ / "v.npy", data_);
  ASSERT_EQ(Build("new").exit_code, 0);
  for (float& v : data_.data) v -= 1000.0f;
  const std::string q = QueryOfRow(9);
  auto before = RunCli("search" + StoreArgs() + " --query " + q + " --top-k 1 --json");
  ASSERT_EQ(before.exit_code, 0) << before.err;
  EXPECT_GT(json::parse(before.out)["results"][0]["score"].get<double>(), 100.0);

  auto rb = RunCli("rollback" + StoreArgs().substr(0, StoreArgs().find(" --cache-dir")) + " --run-id old");
  ASSERT_EQ(rb.exit_code, 0) << rb.err;
  auto after = RunCli("search" + StoreArgs() + " --query " + q + " --top-k 1 --json");
  ASSERT_EQ(after.exit_code, 0) << after.err;
  json a = json::parse(after.out);
  EXPECT_EQ(a["results"][0]["id"], 9);
  EXPECT_LT(a["results"][0]["score"].get<double>(), 1e-3);
}

TEST_F(ReadCliTest, ReaderModeRangeAnswersAsDownloadAndAutoIsReported) {
  ASSERT_EQ(Build("r1").exit_code, 0);
  const std::string query = " --query " + QueryOfRow(42) + " --top-k 5 --num-probes 4 --json";
  auto download = RunCli("search" + StoreArgs() + query + " --reader-mode download");
  ASSERT_EQ(download.exit_code, 0) << download.err;
  const fs::path range_cache = tmp_ / "range-cache";
  auto range = RunCli("search --store " + ShellQuote((tmp_ / "store").string()) + " --cache-dir " +
                      ShellQuote(range_cache.string()) + query + " --reader-mode range");
  ASSERT_EQ(range.exit_code, 0) << range.err;
  json d = json::parse(download.out), r = json::parse(range.out);
  EXPECT_EQ(r["results"], d["results"]);
  EXPECT_EQ(r["results"][0]["id"], 42);
  EXPECT_TRUE(testing::ListFiles(range_cache).empty());  // nothing downloaded

  // info and shards report the tier a search would use; auto is resolved (small shards: download).
  auto info = RunCli("info" + StoreArgs() + " --json --reader-mode auto");
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_EQ(json::parse(info.out)["reader_mode"], "download");
  auto shards = RunCli("shards" + StoreArgs() + " --json --reader-mode range");
  ASSERT_EQ(shards.exit_code, 0) << shards.err;
  EXPECT_EQ(json::parse(shards.out)["reader_mode"], "range");
  EXPECT_EQ(json::parse(shards.out)["shards"].size(), 4u);
  // Without the flag the output is what it was.
  EXPECT_FALSE(json::parse(RunCli("info" + StoreArgs() + " --json").out).contains("reader_mode"));

  for (const char* command : {"search", "info", "shards"}) {
    auto bad = RunCli(std::string(command) + StoreArgs() + (command == std::string("search") ? query : "") +
                      " --reader-mode ranged");
    EXPECT_EQ(bad.exit_code, 1) << command;
    EXPECT_NE(bad.err.find("--reader-mode must be download, range or auto (got 'ranged')"), std::string::npos)
        << command << ": " << bad.err;
  }
}

}  // namespace
}  // namespace shardvec
