// `shardvec search / info / shards / route` with --run-id, --ref or --offset: an older published
// snapshot is read without a rollback (_CURRENT stays as it was), on a folder and on the S3 test server.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "shardvec/object_store.h"
#include "support/s3_test_env.h"
#include "support/test_util.h"

namespace shardvec {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using testing::ShellQuote;

class SnapshotSelectCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = testing::ClusteredMatrix(200, 6, 4, 17);
    testing::WriteNpy(tmp_ / "old.npy", data_);
    // The newer snapshot holds every vector shifted far away, so its answers cannot pass for the old one's.
    Matrix shifted = data_;
    for (float& v : shifted.data) v += 1000.0f;
    testing::WriteNpy(tmp_ / "new.npy", shifted);
  }

  static bool IsS3(const std::string& store) { return store.rfind("s3://", 0) == 0; }
  testing::CommandResult Cli(const std::string& store, const std::string& command, const std::string& flags) {
    return testing::RunCommand((IsS3(store) ? testing::S3CliEnv() + " " : std::string()) +
                               ShellQuote(SHARDVEC_CLI_PATH) + " " + command + " --store " + ShellQuote(store) +
                               " " + flags);
  }
  std::string ReadFlags() { return "--cache-dir " + ShellQuote((tmp_ / ("cache" + std::to_string(++reads_))).string()); }
  void Build(const std::string& store, const std::string& run_id) {
    auto r = Cli(store, "build", "--quiet --metric l2 --strategy cluster --num-dbs 4 --train-centroids --run-id " +
                                     run_id + " --local-root " + ShellQuote((tmp_ / "lr").string()) + " --input " +
                                     ShellQuote((tmp_ / (run_id + ".npy")).string()));
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  std::string CurrentBytes(const std::string& store) {
    auto opened = OpenStore(store, IsS3(store) ? testing::S3TestOptions() : StoreOptions{});
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    auto bytes = (*opened)->Get("_CURRENT");
    EXPECT_TRUE(bytes.ok()) << bytes.status().ToString();
    return bytes.ok() ? *bytes : "";
  }
  std::string Query() const {
    std::string q;
    for (int64_t j = 0; j < data_.cols; ++j) q += (j ? "," : "") + std::to_string(data_.row(9)[j]);
    return q;
  }
  json Json(const std::string& store, const std::string& command, const std::string& flags) {
    auto r = Cli(store, command, flags + " --json " + (command == "history" ? std::string() : ReadFlags()));
    EXPECT_EQ(r.exit_code, 0) << command << " " << flags << ": " << r.err;
    return r.exit_code == 0 ? json::parse(r.out) : json();
  }

  // Builds "old" then "new" on `store`, then reads "old" through each flag.
  void ReadsTheOlderSnapshot(const std::string& store) {
    Build(store, "old");
    Build(store, "new");
    const std::string current = CurrentBytes(store);
    const json history = Json(store, "history", "--limit 10");
    ASSERT_EQ(history["manifests"].size(), 2u);
    ASSERT_EQ(history["manifests"][1]["run_id"], "old");
    const std::string old_ref = history["manifests"][1]["ref"];

    // Without a flag: the newer snapshot (its vectors are 1000 away in every coordinate).
    const json now = Json(store, "search", "--query " + Query() + " --top-k 1");
    EXPECT_GT(now["results"][0]["score"].get<double>(), 100.0);
    for (const std::string& flag : {std::string("--run-id old"), std::string("--offset 1"), "--ref " + ShellQuote(old_ref)}) {
      SCOPED_TRACE(flag);
      const json hit = Json(store, "search", flag + " --query " + Query() + " --top-k 1");
      EXPECT_EQ(hit["results"][0]["id"], 9);
      EXPECT_LT(hit["results"][0]["score"].get<double>(), 1e-3);
      const json info = Json(store, "info", flag);
      EXPECT_EQ(info["run_id"], "old");
      EXPECT_EQ(info["manifest_ref"], old_ref);
      const json shards = Json(store, "shards", flag);
      ASSERT_EQ(shards["shards"].size(), 4u);
      for (const auto& s : shards["shards"]) {
        if (!s["db_url"].is_null()) EXPECT_THAT(s["db_url"].get<std::string>(), HasSubstr("run_id=old/"));
      }
      const json route = Json(store, "route", flag + " --query " + Query());
      EXPECT_EQ(route["shard_ids"].size(), 1u);
    }
    // --offset 0 is the newest manifest, and --run-id new the current one.
    EXPECT_EQ(Json(store, "info", "--offset 0")["run_id"], "new");
    EXPECT_EQ(Json(store, "info", "--run-id new")["run_id"], "new");
    // Nothing moved _CURRENT.
    EXPECT_EQ(CurrentBytes(store), current);
    EXPECT_EQ(Json(store, "info", "")["run_id"], "new");

    // Nothing matches: exit 1, the flag and its value named.
    auto none = Cli(store, "search", "--run-id nope --query " + Query() + " " + ReadFlags());
    EXPECT_EQ(none.exit_code, 1);
    EXPECT_THAT(none.err, HasSubstr("search: error: --run-id 'nope': No manifest found with run_id=nope"));
    auto far = Cli(store, "info", "--offset 2 " + ReadFlags());
    EXPECT_EQ(far.exit_code, 1);
    EXPECT_THAT(far.err, HasSubstr("info: error: --offset 2: offset 2 is out of range: the store has 2 manifest(s)"));
    auto bad_ref = Cli(store, "shards", "--ref manifests/nothing-here/manifest " + ReadFlags());
    EXPECT_EQ(bad_ref.exit_code, 1);
    EXPECT_THAT(bad_ref.err, HasSubstr("shards: error: --ref 'manifests/nothing-here/manifest': ref "));
    auto gone = Cli(store, "info", "--ref " + ShellQuote(old_ref + "x") + " " + ReadFlags());
    EXPECT_EQ(gone.exit_code, 1);
    EXPECT_THAT(gone.err, HasSubstr("--ref '" + old_ref + "x'"));
  }

  Matrix data_;
  testing::TempDir tmp_;
  int reads_ = 0;
};

class S3SnapshotSelectCliTest : public SnapshotSelectCliTest {};

TEST_F(SnapshotSelectCliTest, SearchInfoShardsAndRouteReadAnOlderSnapshotOnAFolder) {
  ReadsTheOlderSnapshot((tmp_ / "store").string());
}

TEST_F(S3SnapshotSelectCliTest, SearchInfoShardsAndRouteReadAnOlderSnapshotOnS3) {
  ReadsTheOlderSnapshot(testing::UniqueS3Prefix("cli-select"));
}

TEST_F(SnapshotSelectCliTest, TheSelectorsAreMutuallyExclusiveAndOffsetIsNotNegative) {
  const std::string store = (tmp_ / "store").string();
  Build(store, "old");
  for (const char* flags : {"--run-id old --offset 0", "--run-id old --ref x", "--ref x --offset 0"}) {
    SCOPED_TRACE(flags);
    for (const char* command : {"search --query 1,2,3,4,5,6", "info", "shards", "route --query 1,2,3,4,5,6"}) {
      auto r = Cli(store, command, flags);
      EXPECT_EQ(r.exit_code, 2) << command;
      EXPECT_THAT(r.err, HasSubstr("excludes"));
    }
  }
  auto negative = Cli(store, "info", "--offset -1");
  EXPECT_EQ(negative.exit_code, 2);
  EXPECT_THAT(negative.err, HasSubstr("--offset"));
  EXPECT_THAT(negative.err, HasSubstr("-1"));
}

}  // namespace
}  // namespace shardvec
