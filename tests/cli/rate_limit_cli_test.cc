// `shardvec search --rate-limit QPS`: accepted with a query file (the same answers, one query at a
// time), refused with a clear error for a value that is not a number > 0. That the bucket paces the
// queries is shown on a simulated clock in tests/common/rate_limit_test.cc.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "support/test_util.h"

namespace shardvec {
namespace {
using testing::RunCli;
using testing::ShellQuote;

class RateLimitCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = testing::ClusteredMatrix(120, 5, 3, 11);
    testing::WriteNpy(tmp_ / "v.npy", data_);
    ASSERT_EQ(RunCli("build --quiet --store " + ShellQuote((tmp_ / "store").string()) + " --local-root " +
                     ShellQuote((tmp_ / "lr").string()) + " --input " + ShellQuote((tmp_ / "v.npy").string()) +
                     " --metric l2 --strategy cluster --num-dbs 3 --train-centroids --run-id r1")
                  .exit_code,
              0);
    Matrix queries{4, 5, {}};
    for (int64_t i : {3, 40, 77, 119}) queries.data.insert(queries.data.end(), data_.row(i), data_.row(i) + 5);
    testing::WriteNpy(tmp_ / "q.npy", queries);
  }
  std::string Search(const std::string& extra) const {
    return "search --store " + ShellQuote((tmp_ / "store").string()) + " --cache-dir " +
           ShellQuote((tmp_ / "cache").string()) + " --query-file " + ShellQuote((tmp_ / "q.npy").string()) +
           " --top-k 2 --json" + extra;
  }
  Matrix data_;
  testing::TempDir tmp_;
};

// Drops the latency field, which differs between two runs.
std::string WithoutLatency(const std::string& out) {
  std::string kept;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    auto j = nlohmann::json::parse(line);
    j.erase("latency_ms");
    kept += j.dump() + "\n";
  }
  return kept;
}

TEST_F(RateLimitCliTest, ARateLimitedSearchAnswersEveryQueryAsWithout) {
  auto plain = RunCli(Search(""));
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  for (const char* qps : {"1000", "2.5", " 50 "}) {
    auto limited = RunCli(Search(" --rate-limit " + ShellQuote(qps)));
    ASSERT_EQ(limited.exit_code, 0) << qps << ": " << limited.err;
    EXPECT_EQ(WithoutLatency(limited.out), WithoutLatency(plain.out)) << qps;
  }
}

TEST_F(RateLimitCliTest, FourQueriesAtOnePerSecondWaitForTheirTokens) {
  // The bucket holds one token: at least one of the three queries after the first waits (unless each
  // search took a second), and every wait is a rate_limiter.throttled event in the metrics file.
  const std::string prom = (tmp_ / "m.prom").string();
  auto r = RunCli("--metrics-file " + ShellQuote(prom) + " " + Search(" --rate-limit 1"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(WithoutLatency(r.out), WithoutLatency(RunCli(Search("")).out));
  const std::string text = testing::ReadText(prom);
  const std::string key = "shardvec_events_total{event=\"rate_limiter.throttled\"} ";
  const size_t at = text.find(key);
  ASSERT_NE(at, std::string::npos) << text;
  const int waits = std::stoi(text.substr(at + key.size()));
  EXPECT_GE(waits, 1);
  EXPECT_LE(waits, 3);
}

TEST_F(RateLimitCliTest, ARateThatIsNotANumberAboveZeroIsRefused) {
  struct Case { std::string value; std::string expect; };
  const std::vector<Case> cases = {
      {"0", "--rate-limit must be a finite number > 0 (per second), got 0"},
      {"-3", "--rate-limit must be a finite number > 0 (per second), got -3"},
      {"inf", "--rate-limit must be a finite number > 0 (per second), got inf"},
      {"abc", "--rate-limit must be a number of queries per second > 0, got 'abc'"},
      {"5qps", "--rate-limit must be a number of queries per second > 0, got '5qps'"},
      {"", "--rate-limit must be a number of queries per second > 0, got ''"},
  };
  for (const Case& c : cases) {
    auto r = RunCli(Search(" --rate-limit " + ShellQuote(c.value)));
    EXPECT_EQ(r.exit_code, 2) << c.value << ": a bad flag value is a usage error";
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << c.value << "\n" << r.err;
  }
}

}  // namespace
}  // namespace shardvec
