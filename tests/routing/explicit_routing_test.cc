#include "routing/explicit_routing.h"

#include <gtest/gtest.h>

namespace shardvec {
namespace {

TEST(RoutingExplicitTest, AcceptsShardIdsInRange) {
  for (int64_t shard : {0, 2, 3}) {
    Result<int64_t> result = ExplicitAssign(shard, 4, "r1");
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    EXPECT_EQ(*result, shard);
  }
}

TEST(RoutingExplicitTest, MissingShardIdNamesTheRecord) {
  Result<int64_t> result = ExplicitAssign(std::nullopt, 4, "doc-17");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(result.status().message(), "EXPLICIT sharding requires shard_id (record id=doc-17)");
}

TEST(RoutingExplicitTest, OutOfRangeShardIdNamesValueRangeAndRecord) {
  Result<int64_t> too_big = ExplicitAssign(7, 4, "42");
  ASSERT_FALSE(too_big.ok());
  EXPECT_EQ(too_big.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(too_big.status().message(), "shard_id 7 out of range [0, 4) (record id=42)");

  Result<int64_t> at_bound = ExplicitAssign(4, 4, "a");
  ASSERT_FALSE(at_bound.ok());
  EXPECT_EQ(at_bound.status().message(), "shard_id 4 out of range [0, 4) (record id=a)");

  Result<int64_t> negative = ExplicitAssign(-1, 4, "b");
  ASSERT_FALSE(negative.ok());
  EXPECT_EQ(negative.status().message(), "shard_id -1 out of range [0, 4) (record id=b)");
}

}  // namespace
}  // namespace shardvec
