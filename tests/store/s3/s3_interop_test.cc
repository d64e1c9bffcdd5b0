// shardvec and an independent S3 client (boto3) see the same bytes: objects written by shardvec read
// back byte-identical with boto3, and a snapshot uploaded by boto3 under the layout is searchable.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "shardvec/reader.h"
#include "store/s3/s3_store.h"
#include "store/s3/sigv4.h"
#include "support/s3_test_env.h"
#include "support/test_util.h"

namespace shardvec {
namespace {

using nlohmann::json;
using testing::ShellQuote;

json Boto3Dump(const std::string& prefix) {
  auto r = testing::RunTestPython("s3_interop.py dump " + ShellQuote(prefix));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.exit_code == 0 ? json::parse(r.out) : json();
}

TEST(S3InteropTest, ObjectsWrittenByShardvecReadBackByteIdenticalWithBoto3) {
  StoreOptions options = testing::S3TestOptions();
  options.part_size_bytes = 5 << 20;
  options.multipart_threshold_bytes = 5 << 20;
  const std::string prefix = testing::UniqueS3Prefix("interop-objects");
  auto store = S3Store::Open(prefix, options);
  ASSERT_TRUE(store.ok());
  std::string big((6 << 20) + 7, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 2654435761u) >> 13);
  const std::map<std::string, std::string> objects = {
      {"plain", "hello"}, {"dir/with space=1/x", "spaced"}, {"big.bin", big}, {"empty", ""}};
  for (const auto& [key, data] : objects) ASSERT_TRUE((*store)->Put(key, data).ok()) << key;
  ASSERT_TRUE((*store)->PutIfAbsent("manifest", "manifest bytes").ok());
  ASSERT_TRUE((*store)->CompareAndSwap("_CURRENT", "pointer", std::nullopt).ok());

  json seen = Boto3Dump(prefix);
  ASSERT_EQ(seen.size(), objects.size() + 2);
  for (const auto& [key, data] : objects) {
    EXPECT_EQ(seen[key]["sha256"], Sha256Hex(data)) << key;
    EXPECT_EQ(seen[key]["size"], data.size()) << key;
  }
  EXPECT_EQ(seen["_CURRENT"]["sha256"], Sha256Hex("pointer"));
}

TEST(S3InteropTest, ShardvecSnapshotOnS3MatchesItsManifestDigestsInBoto3) {
  testing::TempDir tmp;
  testing::WriteNpy(tmp / "v.npy", testing::RandomMatrix(500, 8, 4));
  const std::string prefix = testing::UniqueS3Prefix("interop-snapshot");
  auto built = testing::RunCommand(testing::S3CliEnv() + " " + ShellQuote(SHARDVEC_CLI_PATH) + " build --quiet --store " +
                                   ShellQuote(prefix) + " --input " + ShellQuote((tmp / "v.npy").string()) +
                                   " --metric cosine --strategy cluster --train-centroids --num-dbs 3");
  ASSERT_EQ(built.exit_code, 0) << built.err;
  json seen = Boto3Dump(prefix);

  ReaderOptions o;
  o.store = prefix;
  o.store_options = testing::S3TestOptions();
  o.cache_dir = (tmp / "cache").string();
  auto reader = ShardedVectorReader::Open(o);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  int shards = 0;
  for (const auto& shard : (*reader)->ShardDetails()) {
    if (!shard.db_url) continue;
    const std::string key = shard.db_url->substr(prefix.size() + 1) + "/shard.db";
    ASSERT_TRUE(seen.contains(key)) << key;
    EXPECT_EQ(seen[key]["xxh3"], *shard.digest) << key;
    EXPECT_EQ(seen[key]["size"], shard.db_bytes) << key;
    ++shards;
  }
  EXPECT_EQ(shards, 3);
  EXPECT_TRUE(seen.contains("_CURRENT"));
}

TEST(S3InteropTest, SnapshotUploadedByBoto3IsSearchable) {
  testing::TempDir tmp;
  testing::WriteNpy(tmp / "v.npy", testing::RandomMatrix(500, 8, 5));
  testing::WriteNpy(tmp / "q.npy", testing::RandomMatrix(4, 8, 6));
  const std::string local = (tmp / "local").string();
  auto built = testing::RunCli("build --quiet --store " + ShellQuote(local) + " --input " +
                               ShellQuote((tmp / "v.npy").string()) + " --metric l2 --strategy lsh --num-dbs 3");
  ASSERT_EQ(built.exit_code, 0) << built.err;
  const std::string prefix = testing::UniqueS3Prefix("interop-upload");
  auto uploaded = testing::RunTestPython("s3_interop.py upload " + ShellQuote(local) + " " + ShellQuote(prefix));
  ASSERT_EQ(uploaded.exit_code, 0) << uploaded.err;

  const std::string search = " search --json --top-k 5 --shard-ids 0,1,2 --query-file " +
                             ShellQuote((tmp / "q.npy").string()) + " --cache-dir ";
  auto from_local = testing::RunCli(search + ShellQuote((tmp / "c1").string()) + " --store " + ShellQuote(local));
  auto from_s3 = testing::RunCommand(testing::S3CliEnv() + " " + ShellQuote(SHARDVEC_CLI_PATH) + search +
                                     ShellQuote((tmp / "c2").string()) + " --store " + ShellQuote(prefix));
  ASSERT_EQ(from_s3.exit_code, 0) << from_s3.err;
  ASSERT_EQ(from_local.exit_code, 0) << from_local.err;
  auto results = [](const std::string& out) {
    std::vector<json> r;
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);) r.push_back(json::parse(line)["results"]);
    return r;
  };
  EXPECT_EQ(results(from_s3.out), results(from_local.out));
  EXPECT_EQ(results(from_s3.out).size(), 4u);
}

}  // namespace
}  // namespace shardvec
