// `shardvec copy SRC DST`: folder → S3 → folder gives the same search answers, the copy names only
// its own URLs, a stopped copy resumes, a corrupt source object fails it (exit 1, named), and usage
// errors exit 2.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "support/s3_test_env.h"
#include "support/test_util.h"

namespace shardvec {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using testing::ShellQuote;

class CopyCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::WriteNpy(tmp_ / "v1.npy", testing::RandomMatrix(300, 8, 1));
    testing::WriteNpy(tmp_ / "v2.npy", testing::RandomMatrix(300, 8, 2));
    testing::WriteNpy(tmp_ / "q.npy", testing::RandomMatrix(5, 8, 3));
  }
  static bool IsS3(const std::string& store) { return store.rfind("s3://", 0) == 0; }
  testing::CommandResult Cli(const std::string& args, bool s3 = false) {
    return testing::RunCommand((s3 ? testing::S3CliEnv() + " " : std::string()) + ShellQuote(SHARDVEC_CLI_PATH) +
                               " " + args);
  }
  void Build(const std::string& store) {
    for (const char* run : {"R1", "R2"}) {
      auto r = Cli("build --quiet --metric l2 --strategy lsh --num-dbs 4 --run-id " + std::string(run) +
                   " --local-root " + ShellQuote((tmp_ / "lr").string()) + " --store " + ShellQuote(store) +
                   " --input " + ShellQuote((tmp_ / (run == std::string("R1") ? "v1.npy" : "v2.npy")).string()));
      ASSERT_EQ(r.exit_code, 0) << r.err;
    }
  }
  // Each query's hits (ids, scores, payloads), without the timing.
  json Search(const std::string& store) {
    auto r = Cli("search --json --top-k 5 --num-probes 4 --store " + ShellQuote(store) + " --cache-dir " +
                     ShellQuote((tmp_ / ("cache" + std::to_string(++searches_))).string()) + " --query-file " +
                     ShellQuote((tmp_ / "q.npy").string()),
                 IsS3(store));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    json hits = json::array();
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);) hits.push_back(json::parse(line)["results"]);
    return hits;
  }
  json Copy(const std::string& src, const std::string& dst, const std::string& flags = "") {
    auto r = Cli("copy --json " + ShellQuote(src) + " " + ShellQuote(dst) + " --staging-dir " +
                     ShellQuote((tmp_ / "staging").string()) + " " + flags,
                 IsS3(src) || IsS3(dst));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    try {
      return json::parse(r.out);
    } catch (const std::exception&) {
      ADD_FAILURE() << "copy printed no JSON: " << r.out;
      return json();
    }
  }
  testing::TempDir tmp_;
  int searches_ = 0;
};

TEST_F(CopyCliTest, ACorruptSourceObjectExitsOneNamingItAndPublishesNothing) {
  const std::string src = (tmp_ / "src").string();
  Build(src);
  std::string shard;
  for (const std::string& file : testing::ListFiles(src)) {
    if (file.find("run_id=R2/") != std::string::npos && file.ends_with("shard.db")) shard = file;
  }
  ASSERT_FALSE(shard.empty());
  std::string bytes = testing::ReadText(tmp_ / "src" / shard);
  bytes[bytes.size() / 3] ^= 0x11;
  testing::WriteText(tmp_ / "src" / shard, bytes);
  auto r = Cli("copy " + ShellQuote(src) + " " + ShellQuote((tmp_ / "dst").string()) + " --staging-dir " +
               ShellQuote((tmp_ / "staging").string()));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("shardvec copy: error: SRC object 'file://" + src + "/" + shard + "' has digest"));
  EXPECT_FALSE(std::filesystem::exists(tmp_ / "dst" / "_CURRENT"));
}

TEST_F(CopyCliTest, UsageErrorsExitTwo) {
  const std::string src = (tmp_ / "src").string();
  auto both = Cli("copy " + ShellQuote(src) + " " + ShellQuote((tmp_ / "dst").string()) + " --snapshot R1 --all-history");
  EXPECT_EQ(both.exit_code, 2) << both.err;
  EXPECT_THAT(both.err, HasSubstr("excludes"));
  auto s3_flag = Cli("copy " + ShellQuote(src) + " " + ShellQuote((tmp_ / "dst").string()) + " --region eu-west-1");
  EXPECT_EQ(s3_flag.exit_code, 2) << s3_flag.err;
  EXPECT_THAT(s3_flag.err, HasSubstr("--region applies to s3:// stores only, and SRC '" + src + "' and DST"));
  auto missing = Cli("copy " + ShellQuote(src));
  EXPECT_EQ(missing.exit_code, 2) << missing.err;
  EXPECT_THAT(missing.err, HasSubstr("DST is required"));
}

class S3CopyCliTest : public CopyCliTest {};

TEST_F(S3CopyCliTest, FolderToS3ToFolderAnswersAsTheOriginalAndResumes) {
  const std::string src = (tmp_ / "src").string();
  Build(src);
  const json before = Search(src);
  ASSERT_FALSE(before.empty());
  const std::string s3 = testing::UniqueS3Prefix("cli-copy");
  int64_t objects = 0;  // every shard file, routing artifact (hyperplanes) and id index of both runs
  for (const std::string& file : testing::ListFiles(src)) {
    objects += file.ends_with("shard.db") || file.ends_with(".npy") || file.ends_with("id_index.bin");
  }
  ASSERT_GE(objects, 2);
  json up = Copy(src, s3, "--all-history --max-workers 2");
  EXPECT_EQ(up["objects_copied"], objects);
  EXPECT_EQ(up["run_id"], "R2");
  EXPECT_THAT(up["current_ref"].get<std::string>(), ::testing::StartsWith(s3 + "/manifests/"));
  EXPECT_EQ(Search(s3), before);

  // Back down; then again, which finds everything there.
  const std::string down = (tmp_ / "down").string();
  json back = Copy(s3, down, "--all-history");
  EXPECT_EQ(Search(down), before);
  json again = Copy(s3, down, "--all-history");
  EXPECT_EQ(again["objects_copied"], 0);
  EXPECT_EQ(again["objects_skipped"], back["objects_copied"]);
  // The copy names only its own URLs: not the folder it came from, not the bucket.
  for (const std::string& file : testing::ListFiles(down)) {
    if (!file.ends_with("manifest") && file != "_CURRENT") continue;
    const std::string bytes = testing::ReadText(std::filesystem::path(down) / file);
    EXPECT_EQ(bytes.find(src), std::string::npos) << file;
    EXPECT_EQ(bytes.find("s3://"), std::string::npos) << file;
  }
  // --snapshot R1 into a new folder serves R1.
  const std::string r1 = (tmp_ / "r1").string();
  json one = Copy(s3, r1, "--snapshot R1");
  EXPECT_EQ(one["run_id"], "R1");
  EXPECT_EQ(one["manifests"].size(), 1u);
  auto info = Cli("info --json --store " + ShellQuote(r1));
  EXPECT_THAT(info.out, HasSubstr("\"run_id\":\"R1\""));
}

}  // namespace
}  // namespace shardvec
