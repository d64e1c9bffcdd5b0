// The reader's cache of filter bitmaps: least recently used entries go first once the bytes exceed
// the budget, a reset drops everything and refuses the older generation's entries, 0 keeps nothing.
#include "read/filter_bitmap_cache.h"

#include <gtest/gtest.h>

namespace shardvec {
namespace {

std::shared_ptr<const FilterBitmap> Bitmap(size_t words, int64_t passing) {
  auto b = std::make_shared<FilterBitmap>();
  b->bits.assign(words, 0);
  b->passing = passing;
  return b;
}

TEST(FilterBitmapCacheTest, LeastRecentlyUsedEntriesGoFirstWithinTheByteBudget) {
  // Each entry: 100 words (800 bytes) plus its key and overhead, under 1200 bytes; three fit in 3600.
  FilterBitmapCache cache(3600);
  for (int64_t db = 0; db < 3; ++db) cache.Insert(1, db, "f", Bitmap(100, db));
  EXPECT_EQ(cache.entries(), 3u);
  EXPECT_LE(cache.bytes(), 3600);
  ASSERT_NE(cache.Find(1, 0, "f"), nullptr);  // 0 is now the most recently used
  cache.Insert(1, 3, "f", Bitmap(100, 3));   // evicts 1, the least recently used
  EXPECT_EQ(cache.entries(), 3u);
  EXPECT_EQ(cache.Find(1, 1, "f"), nullptr);
  ASSERT_NE(cache.Find(1, 0, "f"), nullptr);
  EXPECT_EQ(cache.Find(1, 0, "f")->passing, 0);
  EXPECT_EQ(cache.Find(1, 3, "f")->passing, 3);
  EXPECT_EQ(cache.Find(1, 3, "other filter"), nullptr);
  EXPECT_EQ(cache.Find(2, 3, "f"), nullptr);  // another snapshot's shard 3
  EXPECT_EQ(cache.reused(), 4);
  // An entry larger than the whole budget is not kept and evicts nothing.
  cache.Insert(1, 9, "f", Bitmap(1000, 9));
  EXPECT_EQ(cache.Find(1, 9, "f"), nullptr);
  EXPECT_EQ(cache.entries(), 3u);
}

TEST(FilterBitmapCacheTest, AResetDropsEverythingAndRefusesOlderGenerations) {
  FilterBitmapCache cache(1 << 20);
  cache.Insert(1, 0, "f", Bitmap(10, 1));
  cache.Reset(2);
  EXPECT_EQ(cache.entries(), 0u);
  EXPECT_EQ(cache.bytes(), 0);
  EXPECT_EQ(cache.Find(1, 0, "f"), nullptr);
  cache.Insert(1, 0, "f", Bitmap(10, 1));  // a search still on the old snapshot
  EXPECT_EQ(cache.entries(), 0u);
  cache.Insert(2, 0, "f", Bitmap(10, 1));
  EXPECT_NE(cache.Find(2, 0, "f"), nullptr);
}

TEST(FilterBitmapCacheTest, ABudgetOfZeroKeepsNothing) {
  FilterBitmapCache cache(0);
  cache.Insert(1, 0, "f", Bitmap(1, 1));
  EXPECT_EQ(cache.entries(), 0u);
  EXPECT_EQ(cache.Find(1, 0, "f"), nullptr);
  EXPECT_EQ(cache.reused(), 0);
}

}  // namespace
}  // namespace shardvec
