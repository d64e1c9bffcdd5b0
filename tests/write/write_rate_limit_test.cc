// WriteConfig::write_rate_limiter: one token before each batch_size rows of a shard (the reference's
// write batch), counted by a limiter that only counts; an error from the limiter fails the write.
#include <gtest/gtest.h>

#include <atomic>

#include "shardvec/rate_limit.h"
#include "shardvec/writer.h"
#include "support/test_util.h"

namespace shardvec {
namespace {

class CountingLimiter final : public RateLimiter {
 public:
  Status Acquire(int64_t tokens) override {
    taken += tokens;
    return fail ? Status::Unavailable("the limiter is out of order") : Status::OK();
  }
  std::atomic<int64_t> taken{0};
  bool fail = false;
};

std::vector<Record> Records(const Matrix& m) {
  std::vector<Record> records;
  for (int64_t i = 0; i < m.rows; ++i) {
    Record r;
    r.id = RecordId(i);
    r.vector.assign(m.row(i), m.row(i) + m.cols);
    records.push_back(std::move(r));
  }
  return records;
}

class WriteRateLimitTest : public ::testing::Test {
 protected:
  WriteConfig Config() {
    WriteConfig c;
    c.store = (tmp_ / "store").string();
    c.local_root = (tmp_ / "build").string();
    c.index.dim = 4;
    c.index.metric = Metric::kL2;
    c.sharding.strategy = Strategy::kLsh;
    c.sharding.num_dbs = 3;
    c.batch_size = 7;
    return c;
  }
  static int64_t ExpectedTokens(const BuildResult& result, int64_t batch_size) {
    int64_t tokens = 0;
    for (const ShardInfo& s : result.shards) tokens += (s.row_count + batch_size - 1) / batch_size;
    return tokens;
  }
  testing::TempDir tmp_;
};

TEST_F(WriteRateLimitTest, StreamTakesOneTokenPerBatchOfEachShard) {
  WriteConfig c = Config();
  auto limiter = std::make_shared<CountingLimiter>();
  c.write_rate_limiter = limiter;
  VectorRecordSource source(Records(testing::RandomMatrix(100, 4, 3)));
  auto result = WriteSharded(c, source);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_EQ(result->total_vectors, 100);
  // More than ceil(100 / 7) = 15: every shard's last batch is partial.
  EXPECT_EQ(limiter->taken.load(), ExpectedTokens(*result, 7));
  EXPECT_GT(limiter->taken.load(), 15);
}

TEST_F(WriteRateLimitTest, BatchInMemoryTakesTheSameTokens) {
  WriteConfig c = Config();
  auto limiter = std::make_shared<CountingLimiter>();
  c.write_rate_limiter = limiter;
  const Matrix m = testing::RandomMatrix(100, 4, 3);
  std::vector<int64_t> ids(100);
  for (int64_t i = 0; i < 100; ++i) ids[static_cast<size_t>(i)] = i;
  RecordBatch batch;
  batch.rows = 100;
  batch.dim = 4;
  batch.vectors = m.data.data();
  batch.int_ids = ids;
  auto result = WriteSharded(c, batch);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(limiter->taken.load(), ExpectedTokens(*result, 7));
}

TEST_F(WriteRateLimitTest, ALimiterErrorFailsTheWriteAndPublishesNothing) {
  WriteConfig c = Config();
  auto limiter = std::make_shared<CountingLimiter>();
  limiter->fail = true;
  c.write_rate_limiter = limiter;
  VectorRecordSource source(Records(testing::RandomMatrix(20, 4, 3)));
  auto result = WriteSharded(c, source);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().message(), "the limiter is out of order");
  EXPECT_FALSE(std::filesystem::exists(tmp_ / "store" / "_CURRENT"));
}

}  // namespace
}  // namespace shardvec
