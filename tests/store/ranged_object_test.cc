#include "store/ranged_object.h"

#include <gtest/gtest.h>

#include <random>

#include "common/thread_pool.h"
#include "store/local_store.h"
#include "support/test_util.h"

namespace shardvec {
namespace {

constexpr int64_t kPage = 4096;

class RangedObjectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937 rng(7);
    bytes_.resize(kSize);
    for (char& c : bytes_) c = static_cast<char>(rng());
    ASSERT_TRUE(store_->Put("obj", bytes_).ok());
  }
  std::unique_ptr<RangedObject> Open(int64_t cache_pages, ThreadPool* pool = nullptr, int64_t size = kSize) {
    RangedObjectOptions o;
    o.page_bytes = kPage;
    o.page_cache_pages = cache_pages;
    o.max_request_bytes = 4 * kPage;
    o.max_readahead_bytes = 32 * kPage;
    return std::make_unique<RangedObject>(store_, "obj", size, o, counters_, pool);
  }
  std::string ReadAt(RangedObject& object, int64_t offset, int64_t length) {
    std::string out(static_cast<size_t>(length), '\0');
    Status st = object.Read(offset, length, out.data());
    EXPECT_TRUE(st.ok()) << st.ToString();
    return out;
  }
  std::string Expected(int64_t offset, int64_t length) const {
    return bytes_.substr(static_cast<size_t>(offset), static_cast<size_t>(length));
  }

  static constexpr int64_t kSize = 100 * kPage + 123;  // the last page is partial
  testing::TempDir tmp_;
  std::shared_ptr<LocalStore> store_ = std::make_shared<LocalStore>(tmp_.path() / "store");
  std::shared_ptr<RangeReadCounters> counters_ = std::make_shared<RangeReadCounters>();
  std::string bytes_;
};

TEST_F(RangedObjectTest, ReadsAnswerTheObjectsBytesAcrossPagesAndItsPartialLastPage) {
  auto object = Open(16);
  std::mt19937 rng(3);
  for (int i = 0; i < 200; ++i) {
    const int64_t offset = static_cast<int64_t>(rng() % kSize);
    const int64_t length = std::min<int64_t>(static_cast<int64_t>(rng() % (3 * kPage)), kSize - offset);
    ASSERT_EQ(ReadAt(*object, offset, length), Expected(offset, length)) << offset << "+" << length;
  }
  EXPECT_EQ(ReadAt(*object, kSize - 10, 10), Expected(kSize - 10, 10));
  EXPECT_LE(object->cached_pages(), 16);
  // Outside the object: refused, naming the range.
  std::string out(20, '\0');
  Status st = object->Read(kSize - 10, 20, out.data());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("outside"), std::string::npos) << st.message();
}

TEST_F(RangedObjectTest, ACachedPageCostsNoRequestAndTheLeastRecentlyUsedIsEvicted) {
  auto object = Open(3);
  for (int64_t page : {10, 20, 30}) ReadAt(*object, page * kPage, 8);
  EXPECT_EQ(counters_->requests.load(), 3);
  EXPECT_EQ(counters_->bytes_fetched.load(), 3 * kPage);  // whole pages, no read-ahead for random reads
  ReadAt(*object, 10 * kPage + 100, 8);  // a hit; page 10 becomes the most recently used
  EXPECT_EQ(counters_->requests.load(), 3);
  ReadAt(*object, 40 * kPage, 8);  // evicts page 20, the least recently used
  EXPECT_EQ(object->cached_pages(), 3);
  ReadAt(*object, 10 * kPage, 8);
  ReadAt(*object, 30 * kPage, 8);
  EXPECT_EQ(counters_->requests.load(), 4);
  ReadAt(*object, 20 * kPage, 8);  // evicted: fetched again
  EXPECT_EQ(counters_->requests.load(), 5);
}

TEST_F(RangedObjectTest, AScanIsReadAheadInGrowingWindowsFetchedInParallelParts) {
  auto pool = ThreadPool::Create(4, "test");
  ASSERT_TRUE(pool.ok());
  auto object = Open(64, pool->get());
  for (int64_t page = 0; page * kPage < kSize; ++page) {
    const int64_t length = std::min(kPage, kSize - page * kPage);
    ASSERT_EQ(ReadAt(*object, page * kPage, length), Expected(page * kPage, length));
  }
  // 101 pages read one at a time: every byte fetched once, in a handful of windows of at most
  // 32 pages (half the cache), each split into 4-page parts.
  EXPECT_EQ(counters_->bytes_fetched.load(), kSize);
  EXPECT_LT(counters_->requests.load(), 40);
  EXPECT_GE(counters_->requests.load(), 101 / 4);
}

TEST_F(RangedObjectTest, WithoutACacheEveryReadFetchesExactlyItsBytes) {
  auto object = Open(0);
  EXPECT_EQ(ReadAt(*object, 5, 10), Expected(5, 10));
  EXPECT_EQ(ReadAt(*object, 5, 10), Expected(5, 10));
  EXPECT_EQ(counters_->bytes_fetched.load(), 20);
  EXPECT_EQ(counters_->requests.load(), 2);
  EXPECT_EQ(object->cached_pages(), 0);
}

TEST_F(RangedObjectTest, SeededPagesAreServedWithoutARequest) {
  auto object = Open(8);
  object->Seed(bytes_.substr(0, 2 * kPage + 5));  // two whole pages; the partial third is not kept
  EXPECT_EQ(object->cached_pages(), 2);
  EXPECT_EQ(ReadAt(*object, 100, 2 * kPage - 100), Expected(100, 2 * kPage - 100));
  EXPECT_EQ(counters_->requests.load(), 0);
}

TEST_F(RangedObjectTest, AnObjectShorterThanItsDeclaredSizeIsCorruptionNamingIt) {
  auto object = Open(8, nullptr, kSize + 50 * kPage);
  std::string out(kPage, '\0');
  Status st = object->Read(kSize + kPage, kPage, out.data());
  EXPECT_EQ(st.code(), StatusCode::kCorruption) << st.ToString();
  EXPECT_NE(st.message().find("obj"), std::string::npos) << st.message();
  // A store error is the store's, naming the object.
  ASSERT_TRUE(store_->Delete("obj").ok());
  st = Open(8)->Read(0, 10, out.data());
  EXPECT_EQ(st.code(), StatusCode::kNotFound) << st.ToString();
  EXPECT_NE(st.message().find("ranged read of"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace shardvec
