// RowRouter: a plan checked and its router built once, then reused for every batch a worker routes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "routing/cel/cel.h"
#include "shardvec/distributed.h"
#include "support/test_util.h"

namespace shardvec {
namespace {
using ::testing::HasSubstr;

constexpr int64_t kDim = 8;
constexpr int64_t kRows = 1000;
constexpr int64_t kBatch = 20;

class RowRouterTest : public ::testing::Test {
 protected:
  RowRouterTest() : data_(testing::RandomMatrix(kRows, kDim, 11)) {
    for (int64_t i = 0; i < kRows; ++i) {
      shard_ids_.push_back(i % 4);
      contexts_.push_back(RoutingContext{{"tenant", "t" + std::to_string(i)}});
      optional_contexts_.emplace_back(contexts_.back());
    }
  }

  RoutingPlan Plan(Strategy strategy) {
    WriteConfig c;
    c.store = (tmp_ / "store").string();
    c.index.dim = kDim;
    c.index.metric = Metric::kL2;
    c.sharding.strategy = strategy;
    c.sharding.num_dbs = 4;
    if (strategy == Strategy::kCluster) {
      c.sharding.centroids = testing::MakeMatrix(4, kDim, {data_.data.begin(), data_.data.begin() + 4 * kDim});
    }
    if (strategy == Strategy::kCel) {
      c.sharding.cel_expr = "int(shard_hash(tenant) % 4u)";
      c.sharding.cel_columns = {{"tenant", "string"}};
    }
    auto plan = PlanRouting(c, nullptr);
    EXPECT_TRUE(plan.ok()) << plan.status().ToString();
    return *plan;
  }

  // Rows [begin, begin + rows) as a batch with the column `strategy` reads (shard ids or contexts).
  RecordBatch Batch(int64_t begin, int64_t rows, Strategy strategy = Strategy::kCel) const {
    RecordBatch b{rows, kDim, data_.row(begin)};
    const auto first = static_cast<size_t>(begin), count = static_cast<size_t>(rows);
    if (strategy == Strategy::kExplicit) b.shard_ids = std::span<const int64_t>(shard_ids_).subspan(first, count);
    if (strategy == Strategy::kCel) {
      b.routing_contexts = std::span<const std::optional<RoutingContext>>(optional_contexts_).subspan(first, count);
    }
    return b;
  }

  testing::TempDir tmp_;
  Matrix data_;
  std::vector<int64_t> shard_ids_;
  std::vector<RoutingContext> contexts_;
  std::vector<std::optional<RoutingContext>> optional_contexts_;
};

TEST_F(RowRouterTest, ManyBatchesOnOnePreparedRouterGiveTheShardsOfAFreshRouter) {
  for (Strategy strategy : {Strategy::kCluster, Strategy::kLsh, Strategy::kExplicit, Strategy::kCel}) {
    SCOPED_TRACE(std::string(StrategyName(strategy)));
    const RoutingPlan plan = Plan(strategy);
    auto router = RowRouter::Create(plan);
    ASSERT_TRUE(router.ok()) << router.status().ToString();
    std::set<int64_t> seen;
    for (int64_t begin = 0; begin < kRows; begin += kBatch) {
      auto prepared = (*router)->Route(Batch(begin, kBatch, strategy), begin);
      ASSERT_TRUE(prepared.ok()) << prepared.status().ToString();
      const int64_t* ids = strategy == Strategy::kExplicit ? shard_ids_.data() + begin : nullptr;
      const RoutingContext* contexts = strategy == Strategy::kCel ? contexts_.data() + begin : nullptr;
      auto fresh = RouteRows(plan, data_.row(begin), kBatch, ids, begin, contexts);
      ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
      EXPECT_EQ(*prepared, *fresh) << "rows from " << begin;
      seen.insert(prepared->begin(), prepared->end());
    }
    EXPECT_EQ(seen.size(), 4u);  // the batches really spread over the shards
  }
}

TEST_F(RowRouterTest, ACelRouterIsCompiledOnceForAllItsBatches) {
  const RoutingPlan plan = Plan(Strategy::kCel);
  const int64_t before = cel::Program::CompileCalls();
  auto router = RowRouter::Create(plan);
  ASSERT_TRUE(router.ok()) << router.status().ToString();
  for (int64_t begin = 0; begin < kRows; begin += kBatch) ASSERT_TRUE((*router)->Route(Batch(begin, kBatch), begin).ok());
  EXPECT_EQ(cel::Program::CompileCalls() - before, 1);

  // RouteRows is one RowRouter per call: one compilation each (checking the plan no longer compiles
  // it a second time).
  const int64_t fresh_before = cel::Program::CompileCalls();
  for (int64_t begin = 0; begin < kRows; begin += kBatch) {
    ASSERT_TRUE(RouteRows(plan, data_.row(begin), kBatch, nullptr, begin, contexts_.data() + begin).ok());
  }
  EXPECT_EQ(cel::Program::CompileCalls() - fresh_before, kRows / kBatch);
}

TEST_F(RowRouterTest, OneRouterRoutesFromSeveralThreadsAtOnce) {
  auto router = RowRouter::Create(Plan(Strategy::kCel));
  ASSERT_TRUE(router.ok()) << router.status().ToString();
  auto expected = (*router)->Route(Batch(0, kRows));
  ASSERT_TRUE(expected.ok());
  std::vector<std::vector<int64_t>> got(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < got.size(); ++t) {
    threads.emplace_back([&, t] {
      auto routed = (*router)->Route(Batch(0, kRows));
      if (routed.ok()) got[t] = *routed;
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& g : got) EXPECT_EQ(g, *expected);
}

TEST_F(RowRouterTest, ABatchOfTheWrongShapeOrWithoutContextsIsRefusedNamingIt) {
  auto router = RowRouter::Create(Plan(Strategy::kCel));
  ASSERT_TRUE(router.ok()) << router.status().ToString();
  RecordBatch narrow{3, 4, data_.data.data()};
  narrow.routing_contexts = std::span<const std::optional<RoutingContext>>(optional_contexts_).first(3);
  EXPECT_THAT((*router)->Route(narrow).status().message(), HasSubstr("vectors have 4 columns, expected the plan's dim 8"));
  RecordBatch short_column = Batch(0, 3);
  short_column.shard_ids = std::span<const int64_t>(shard_ids_).first(2);
  auto shape = (*router)->Route(short_column);
  EXPECT_EQ(shape.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(shape.status().message(), HasSubstr("record batch: shard_ids has 2 entries for 3 rows"));
  std::vector<std::optional<RoutingContext>> gap = {contexts_[0], std::nullopt, contexts_[2]};
  RecordBatch with_gap = Batch(0, 3);
  with_gap.routing_contexts = gap;
  EXPECT_THAT((*router)->Route(with_gap, 40).status().message(), HasSubstr("requires routing_context (row 41)"));
  RecordBatch without = Batch(0, 3);
  without.routing_contexts = {};
  EXPECT_THAT((*router)->Route(without, 40).status().message(), HasSubstr("requires routing_context (row 40)"));

  RoutingPlan bad = Plan(Strategy::kLsh);
  bad.num_hash_bits = 3;
  auto refused = RowRouter::Create(bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("routing plan has 8 hyperplanes but num_hash_bits 3"));
}

}  // namespace
}  // namespace shardvec
