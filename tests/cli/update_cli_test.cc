// End-to-end tests of `shardvec update` (the binary as a child process) on a snapshot `shardvec build`
// made: upserts from a .jsonl file, deletes from an id file, what it prints, what a reader then sees,
// `history --shards`, and the usage errors.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <regex>

#include <nlohmann/json.hpp>

#include "shardvec/reader.h"
#include "support/test_util.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using testing::RunCli;
using testing::ShellQuote;
using ::testing::HasSubstr;

class UpdateCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::WriteNpy(tmp_ / "v.npy", testing::RandomMatrix(60, 4, 7));
    std::string ids;
    for (int i = 0; i < 60; ++i) ids += std::to_string(i) + "\n";
    testing::WriteText(tmp_ / "ids.txt", ids);
    auto r = RunCli(fmt::format("build --quiet --store {} --local-root {} --input {} --ids {} --metric l2 "
                                "--strategy cluster --num-dbs 3 --train-centroids --sublists-per-shard 1 --run-id base",
                                ShellQuote(Store()), ShellQuote(LocalRoot()), ShellQuote((tmp_ / "v.npy").string()),
                                ShellQuote((tmp_ / "ids.txt").string())));
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  testing::CommandResult Update(const std::string& flags) {
    return RunCli(fmt::format("update --store {} --local-root {} {}", ShellQuote(Store()), ShellQuote(LocalRoot()), flags));
  }
  // The nearest hit to `query` in `store`'s current snapshot, every shard probed (a fresh cache each time).
  void Nearest(const std::string& store, std::vector<float> query, SearchHit* hit) {
    ReaderOptions o;
    o.store = store;
    o.cache_dir = (tmp_ / fmt::format("cache{}", ++caches_)).string();
    auto reader = ShardedVectorReader::Open(o);
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    SearchOptions all;
    all.num_probes = 3;
    auto found = (*reader)->Search(query, 1, all);
    ASSERT_TRUE(found.ok()) << found.status().ToString();
    ASSERT_EQ(found->results.size(), 1u);
    *hit = found->results[0];
  }
  std::string Store() const { return (tmp_ / "store").string(); }
  std::string LocalRoot() const { return (tmp_ / "lr").string(); }

  testing::TempDir dir_;
  const fs::path tmp_ = dir_.path();
  int caches_ = 0;
};

TEST_F(UpdateCliTest, UpsertsAndDeletesFromFilesArePublishedAndReported) {
  testing::WriteText(tmp_ / "up.jsonl",
                     "{\"id\": 3, \"vector\": [9, 9, 9, 9], \"payload\": {\"v\": 2}}\n"
                     "{\"id\": 100, \"vector\": [-9, -9, -9, -9]}\n");
  testing::WriteText(tmp_ / "del.txt", "5\n6\n777\n");
  auto r = Update(fmt::format("--upsert {} --delete {} --run-id next --json", ShellQuote((tmp_ / "up.jsonl").string()),
                              ShellQuote((tmp_ / "del.txt").string())));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json out = json::parse(r.out);
  EXPECT_EQ(out["run_id"], "next");
  EXPECT_EQ(out["base_run_id"], "base");
  EXPECT_EQ(out["upserted"], 2);
  EXPECT_EQ(out["replaced"], 1);
  EXPECT_EQ(out["deleted"], 2);
  EXPECT_EQ(out["missing_deletes"], 1);
  EXPECT_EQ(out["total_vectors"], 59);
  EXPECT_TRUE(out["used_id_index"]);  // `shardvec build` wrote one
  EXPECT_TRUE(out["base_centroid_distance"].is_number());

  SearchHit hit;
  ASSERT_NO_FATAL_FAILURE(Nearest(Store(), {9, 9, 9, 9}, &hit));
  EXPECT_EQ(std::get<int64_t>(hit.id), 3);
  EXPECT_EQ(hit.payload_json, "{\"v\": 2}");

  // The text report, an update by the index this time, then history marks the shared shards.
  testing::WriteText(tmp_ / "del2.txt", "7\n");
  r = Update(fmt::format("--delete {} --run-id third", ShellQuote((tmp_ / "del2.txt").string())));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("published run third over base next"));
  EXPECT_THAT(r.out, HasSubstr("1 rebuilt (1 of them edited in place), 2 shared with the base"));
  r = RunCli(fmt::format("history --store {} --shards --json", ShellQuote(Store())));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json history = json::parse(r.out);
  EXPECT_EQ(history["manifests"][0]["run_id"], "third");
  EXPECT_EQ(history["manifests"][0]["shared_shards"], 2);
  EXPECT_EQ(history["manifests"][0]["base_run_id"], "next");
  EXPECT_EQ(history["manifests"][2]["shared_shards"], 0);
  r = RunCli(fmt::format("history --store {} --shards", ShellQuote(Store())));
  EXPECT_THAT(r.out, HasSubstr("run_id=third  (current)  shares 2 of 3 shards (updated from run_id=next)"));
}

TEST_F(UpdateCliTest, StrictRefusesAMissingDeleteAndPublishesNothing) {
  testing::WriteText(tmp_ / "del.txt", "5\ndoc-404\n");
  auto r = Update(fmt::format("--delete {} --strict", ShellQuote((tmp_ / "del.txt").string())));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("doc-404"));
  r = RunCli(fmt::format("history --store {} --json", ShellQuote(Store())));
  EXPECT_EQ(json::parse(r.out)["manifests"].size(), 1u);
}

TEST_F(UpdateCliTest, CompactRebuildsWholeAndRebaseRedoesAStaleUpdate) {
  testing::WriteText(tmp_ / "del.txt", "5\n");
  auto r = Update(fmt::format("--delete {} --compact --run-id second --json", ShellQuote((tmp_ / "del.txt").string())));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json out = json::parse(r.out);
  ASSERT_EQ(out["rebuilt"].size(), 1u);
  EXPECT_FALSE(out["rebuilt"][0]["in_place"]);
  EXPECT_EQ(out["rebased"], 0);
  // The build ("base") is no longer current: refused, or with --rebase redone on "second".
  testing::WriteText(tmp_ / "del2.txt", "6\n");
  r = Update(fmt::format("--delete {} --base base", ShellQuote((tmp_ / "del2.txt").string())));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("PublishConflictError"));
  r = Update(fmt::format("--delete {} --base base --rebase", ShellQuote((tmp_ / "del2.txt").string())));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("over base second"));
  EXPECT_THAT(r.out, HasSubstr("(redone 1 time(s) on a newer current snapshot)"));
  EXPECT_THAT(r.out, HasSubstr("(1 of them edited in place)"));
}

// An int8 snapshot: its touched shard is edited in place, and a row far outside the shard's int8
// ranges has them trained anew, which a log line says; the reader then finds that row.
TEST_F(UpdateCliTest, AnInt8ShardIsEditedInPlaceAndARowOutsideItsRangesRetrainsThem) {
  const std::string store = (tmp_ / "int8").string();
  auto r = RunCli(fmt::format("build --quiet --store {} --local-root {} --input {} --ids {} --metric l2 --strategy cluster "
                              "--num-dbs 3 --train-centroids --quantization int8 --run-id base",
                              ShellQuote(store), ShellQuote(LocalRoot()), ShellQuote((tmp_ / "v.npy").string()),
                              ShellQuote((tmp_ / "ids.txt").string())));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  testing::WriteText(tmp_ / "far.jsonl", "{\"id\": 500, \"vector\": [50, 50, 50, 50]}\n");
  ::setenv("SHARDVEC_LOG", "info", 1);
  r = RunCli(fmt::format("update --store {} --local-root {} --upsert {} --json", ShellQuote(store),
                         ShellQuote(LocalRoot()), ShellQuote((tmp_ / "far.jsonl").string())));
  ::unsetenv("SHARDVEC_LOG");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json out = json::parse(r.out);
  ASSERT_EQ(out["rebuilt"].size(), 1u);
  EXPECT_TRUE(out["rebuilt"][0]["in_place"]);
  EXPECT_THAT(r.err, HasSubstr("update_int8_ranges_retrained"));
  EXPECT_THAT(r.err, HasSubstr("1 of its 1 added rows lie outside the ranges its int8 codes were trained on"));

  SearchHit hit;
  ASSERT_NO_FATAL_FAILURE(Nearest(store, {50, 50, 50, 50}, &hit));
  EXPECT_EQ(std::get<int64_t>(hit.id), 500);
}

TEST_F(UpdateCliTest, UsageErrorsNameTheFlag) {
  auto r = Update("");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("give --upsert FILE, --delete IDS_FILE, or both"));
  r = Update(fmt::format("--ids {}", ShellQuote((tmp_ / "ids.txt").string())));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--ids describes the --upsert rows"));
  r = Update(fmt::format("--upsert {}", ShellQuote((tmp_ / "v.npy").string())));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("has no ids"));
  testing::WriteText(tmp_ / "del.txt", "5\n");
  r = Update(fmt::format("--delete {} --base nosuchrun", ShellQuote((tmp_ / "del.txt").string())));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("nosuchrun"));
}

// --retrain builds the whole snapshot anew (every shard rebuilt whole, none shared) with centroids
// trained on the final records; an LSH snapshot or --compact beside it is a usage error naming the flag.
TEST_F(UpdateCliTest, RetrainRebuildsEveryShardWithCentroidsTrainedAnew) {
  testing::WriteText(tmp_ / "up.jsonl", "{\"id\": 3, \"vector\": [40, 40, 40, 40]}\n{\"id\": 500, \"vector\": [41, 40, 40, 40]}\n");
  auto r = Update(fmt::format("--upsert {} --retrain --json", ShellQuote((tmp_ / "up.jsonl").string())));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json out = json::parse(r.out);
  EXPECT_EQ(out["total_vectors"], 61);
  EXPECT_EQ(out["replaced"], 1);
  EXPECT_EQ(out["shared_shards"], 0);
  for (const json& shard : out["rebuilt"]) EXPECT_FALSE(shard["in_place"].get<bool>());
  SearchHit hit;
  Nearest(Store(), {41, 40, 40, 40}, &hit);
  EXPECT_EQ(std::get<int64_t>(hit.id), 500);
  auto both = Update(fmt::format("--upsert {} --retrain --compact", ShellQuote((tmp_ / "up.jsonl").string())));
  EXPECT_EQ(both.exit_code, 2) << both.err;
  EXPECT_THAT(both.err, HasSubstr("--compact cannot take effect with --retrain"));
}

// On a terminal the update shows a progress line (the touched shards, then the publish); --quiet,
// --json or a pipe show none.
TEST_F(UpdateCliTest, AProgressLineShowsOnATerminalUnlessQuiet) {
  if (testing::RunCommand("command -v script").exit_code != 0) GTEST_SKIP() << "script(1) is not installed";
  testing::WriteText(tmp_ / "up.jsonl", "{\"id\": 3, \"vector\": [9, 9, 9, 9]}\n");
  const auto on_terminal = [&](const std::string& flags) {
    const std::string args = fmt::format("update --store {} --local-root {} --upsert {} {}", ShellQuote(Store()),
                                         ShellQuote(LocalRoot()), ShellQuote((tmp_ / "up.jsonl").string()), flags);
    return testing::RunCommand("script -qec " + ShellQuote(ShellQuote(SHARDVEC_CLI_PATH) + " " + args) + " /dev/null");
  };
  auto tty = on_terminal("");
  ASSERT_EQ(tty.exit_code, 0) << tty.out << tty.err;
  EXPECT_TRUE(std::regex_search(tty.out, std::regex(R"(shards: (\d+)/\1 \(100%\))"))) << tty.out;
  // The line is cleared once published, before the report (and any warning) is printed.
  EXPECT_THAT(tty.out, HasSubstr("publish: 1/1 (100%)\r\033[K"));
  for (const std::string flags : {"--quiet", "--json"}) {
    auto quiet = on_terminal(flags);
    ASSERT_EQ(quiet.exit_code, 0) << flags << quiet.out;
    EXPECT_EQ(quiet.out.find("\033[K"), std::string::npos) << flags << quiet.out;
  }
  auto piped = Update(fmt::format("--upsert {}", ShellQuote((tmp_ / "up.jsonl").string())));
  ASSERT_EQ(piped.exit_code, 0) << piped.err;
  EXPECT_EQ(piped.err.find("\033[K"), std::string::npos) << piped.err;
}

// The update rebuilds shards with the sub-lists the build asked for unless told otherwise: built
// with none, its shards (about 400 rows each, enough for auto lists) are edited in place; with
// --sublists-per-shard 0 each touched shard is rebuilt whole with lists.
TEST_F(UpdateCliTest, AnUpdateKeepsTheSublistsOfTheBuildUnlessToldOtherwise) {
  testing::WriteNpy(tmp_ / "big.npy", testing::RandomMatrix(1200, 4, 9));
  const std::string store = (tmp_ / "lists").string();
  auto r = RunCli(fmt::format("build --quiet --store {} --local-root {} --input {} --metric l2 --strategy lsh "
                              "--num-dbs 3 --num-hash-bits 2 --sublists-per-shard 1",
                              ShellQuote(store), ShellQuote(LocalRoot()), ShellQuote((tmp_ / "big.npy").string())));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  testing::WriteText(tmp_ / "up.jsonl", "{\"id\": 1, \"vector\": [1, 2, 3, 4]}\n{\"id\": 2, \"vector\": [-1, 2, -3, 4]}\n"
                                        "{\"id\": 3, \"vector\": [1, -2, 3, -4]}\n{\"id\": 4, \"vector\": [-1, -2, -3, -4]}\n");
  const auto update = [&](const std::string& flags) {
    auto u = RunCli(fmt::format("update --store {} --local-root {} --upsert {} --json {}", ShellQuote(store),
                                ShellQuote(LocalRoot()), ShellQuote((tmp_ / "up.jsonl").string()), flags));
    EXPECT_EQ(u.exit_code, 0) << u.err;
    std::vector<bool> in_place;
    const json out = json::parse(u.out);
    for (const json& shard : out["rebuilt"]) in_place.push_back(shard["in_place"].get<bool>());
    EXPECT_FALSE(in_place.empty());
    return in_place;
  };
  for (const bool edited : update("")) EXPECT_TRUE(edited);
  for (const bool edited : update("--sublists-per-shard 0")) EXPECT_FALSE(edited);
  for (const bool edited : update("")) EXPECT_TRUE(edited) << "now built with auto lists: edited in place too";
}

}  // namespace
}  // namespace shardvec
