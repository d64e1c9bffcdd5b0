// The CLI under resource limits and with out-of-range numbers: a thread the system refuses, a worker
// count outside 1..1024, and an integer flag too large for its type each end in a clear error that
// names the cause or the value typed (exit 1 or 2), never an abort.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "support/test_util.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::RunCli;
using testing::ShellQuote;

// Address space (KiB) for a capped CLI: room for the process and a few thread stacks (8 MiB each),
// not for 500 of them.
constexpr int kCapKib = 1 << 20;

class LimitsCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = testing::RandomMatrix(300, 8, 5);
    testing::WriteNpy(tmp_ / "v.npy", data_);
  }
  std::string Store() const { return ShellQuote((tmp_ / "store").string()); }
  std::string BuildArgs(const std::string& run_id) const {
    return "build --quiet --store " + Store() + " --local-root " + ShellQuote((tmp_ / "lr").string()) +
           " --input " + ShellQuote((tmp_ / "v.npy").string()) + " --metric l2 --strategy lsh --num-dbs 4 --run-id " +
           run_id;
  }
  std::string SearchArgs() const {
    std::string q;
    for (int64_t j = 0; j < data_.cols; ++j) q += (j ? "," : "") + std::to_string(data_.row(0)[j]);
    return "search --store " + Store() + " --cache-dir " + ShellQuote((tmp_ / "cache").string()) + " --query " + q;
  }
  // The CLI with its address space capped, as `ulimit -v` in a container would.
  static testing::CommandResult RunCapped(const std::string& args) {
    return testing::RunCommand("ulimit -v " + std::to_string(kCapKib) + " && exec " +
                               ShellQuote(SHARDVEC_CLI_PATH) + " " + args);
  }
  Matrix data_;
  testing::TempDir tmp_;
};

TEST_F(LimitsCliTest, RefusedThreadsAreAnErrorNotAnAbort) {
  if (testing::SanitizedBuild()) GTEST_SKIP() << "sanitizer shadow memory does not fit an address-space cap";
  ASSERT_EQ(RunCli(BuildArgs("first")).exit_code, 0);
  const std::string current = testing::ReadText(tmp_ / "store" / "_CURRENT");
  // The cap leaves room for a normal run.
  auto ok = RunCapped(SearchArgs() + " --max-workers 2");
  ASSERT_EQ(ok.exit_code, 0) << ok.err;

  auto search = RunCapped(SearchArgs() + " --max-workers 500");
  EXPECT_EQ(search.exit_code, 1) << search.err;
  EXPECT_THAT(search.err, HasSubstr("cannot start a thread for the reader's searches (max_workers)"));
  EXPECT_THAT(search.err, HasSubstr("500 threads asked for"));
  EXPECT_THAT(search.err, Not(HasSubstr("terminate")));

  auto build = RunCapped(BuildArgs("second") + " --parallelism 500");
  EXPECT_EQ(build.exit_code, 1) << build.err;
  EXPECT_THAT(build.err, HasSubstr("cannot start a thread"));
  EXPECT_THAT(build.err, HasSubstr("(max_parallel_shards)"));
  EXPECT_THAT(build.err, Not(HasSubstr("terminate")));
  // Nothing half-done: the snapshot is the first one, and the build's local folder is gone.
  EXPECT_EQ(testing::ReadText(tmp_ / "store" / "_CURRENT"), current);
  EXPECT_EQ(testing::ListFiles(tmp_ / "lr"), std::vector<std::string>{});
}

TEST_F(LimitsCliTest, WorkerCountsOutsideTheBoundAreRefusedNamingTheValue) {
  ASSERT_EQ(RunCli(BuildArgs("first")).exit_code, 0);
  for (const std::string value : {"-5", "0", "1025"}) {
    SCOPED_TRACE(value);
    auto search = RunCli(SearchArgs() + " --max-workers " + value);
    EXPECT_EQ(search.exit_code, 2) << search.err;
    EXPECT_THAT(search.err, HasSubstr("--max-workers"));
    EXPECT_THAT(search.err, HasSubstr(value));
    auto build = RunCli(BuildArgs("b" + std::to_string(value.size())) + " --parallelism " + value);
    EXPECT_EQ(build.exit_code, 2) << build.err;
    EXPECT_THAT(build.err, HasSubstr("--parallelism"));
    EXPECT_THAT(build.err, HasSubstr(value));
  }
}

// Every integer flag of every command: a value too large for 64 bits is refused with the flag and
// the text typed (CLI11 alone turned it into INT64_MAX).
TEST_F(LimitsCliTest, EveryIntegerFlagThatOverflowsNamesTheValueTyped) {
  const std::string huge = "99999999999999999999";
  const std::string store = " --store " + Store();
  std::string build_without_dbs = BuildArgs("x");
  build_without_dbs.erase(build_without_dbs.find(" --num-dbs 4"), 12);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {SearchArgs(), "--top-k"},
      {SearchArgs(), "--num-probes"},
      {SearchArgs(), "--max-workers"},
      {build_without_dbs, "--num-dbs"},
      {BuildArgs("x"), "--sample-size"},
      {BuildArgs("x"), "--num-probes"},
      {BuildArgs("x"), "--num-hash-bits"},
      {BuildArgs("x"), "--parallelism"},
      {"history" + store, "--limit"},
      {"rollback" + store, "--offset"},
      {"cleanup" + store, "--keep-last"},
  };
  for (const auto& [command, flag] : cases) {
    for (const std::string& value : {huge, "-" + huge}) {
      SCOPED_TRACE(flag + " " + value);
      auto r = RunCli(command + " " + flag + " " + value);
      EXPECT_EQ(r.exit_code, 2) << r.err;
      EXPECT_THAT(r.err, HasSubstr(flag));
      EXPECT_THAT(r.err, HasSubstr(value));
    }
  }
}

}  // namespace
}  // namespace shardvec
