// RecordBatch (records in memory, read in place by row) and the in-memory streams.
#include "shardvec/records.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>

#include "support/test_util.h"

namespace shardvec {
namespace {
using ::testing::HasSubstr;

class RecordBatchTest : public ::testing::Test {
 protected:
  RecordBatchTest() : data_(testing::RandomMatrix(5, 3, 1)) {
    ids_ = {RecordId(int64_t{10}), RecordId("doc-1"), RecordId(int64_t{12}), RecordId("doc-3"), RecordId(int64_t{14})};
    payloads_ = {"{\"a\": 0}", std::nullopt, "{\"a\": 2}", std::nullopt, "{\"a\": 4}"};
    shard_ids_ = {0, kNoShardId, 2, 3, 1};
    contexts_ = {RoutingContext{{"r", "eu"}}, std::nullopt, RoutingContext{{"r", int64_t{7}}}, std::nullopt,
                 RoutingContext{}};
  }
  RecordBatch Full() const {
    RecordBatch b{data_.rows, data_.cols, data_.data.data()};
    b.ids = ids_;
    b.payloads = payloads_;
    b.shard_ids = shard_ids_;
    b.routing_contexts = contexts_;
    return b;
  }

  Matrix data_;
  std::vector<RecordId> ids_;
  std::vector<std::optional<std::string>> payloads_;
  std::vector<int64_t> shard_ids_;
  std::vector<std::optional<RoutingContext>> contexts_;
};

TEST_F(RecordBatchTest, ACheckNamesTheColumnOfTheWrongLengthAndBothCounts) {
  ASSERT_TRUE(Full().Check().ok()) << Full().Check().ToString();
  const std::vector<int64_t> four = {1, 2, 3, 4};
  struct Case { std::string name; std::function<void(RecordBatch&)> spoil; std::string expect; };
  const std::vector<Case> cases = {
      {"int_ids", [&](RecordBatch& b) { b.ids = {}; b.int_ids = four; }, "record batch: int_ids has 4 entries for 5 rows"},
      {"ids", [&](RecordBatch& b) { b.ids = std::span<const RecordId>(ids_).first(2); }, "record batch: ids has 2 entries for 5 rows"},
      {"payloads", [&](RecordBatch& b) { b.payloads = std::span<const std::optional<std::string>>(payloads_).first(3); },
       "record batch: payloads has 3 entries for 5 rows"},
      {"shard_ids", [&](RecordBatch& b) { b.shard_ids = four; }, "record batch: shard_ids has 4 entries for 5 rows"},
      {"routing_contexts", [&](RecordBatch& b) { b.routing_contexts = std::span<const std::optional<RoutingContext>>(contexts_).first(1); },
       "record batch: routing_contexts has 1 entries for 5 rows"},
      {"both ids", [&](RecordBatch& b) { b.int_ids = shard_ids_; },
       "record batch: give int_ids or ids, not both"},
      {"negative rows", [](RecordBatch& b) { b.rows = -1; }, "record batch: rows and dim must be >= 0 (got rows -1, dim 3)"},
      {"no vectors", [](RecordBatch& b) { b.vectors = nullptr; }, "record batch: 5 rows but no vectors"},
  };
  for (const Case& c : cases) {
    RecordBatch b = Full();
    c.spoil(b);
    const Status st = b.Check();
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << c.name;
    EXPECT_THAT(st.message(), HasSubstr(c.expect)) << c.name;
  }
}

TEST_F(RecordBatchTest, RowsAreReadInAnyOrderWhereTheCallerHoldsThem) {
  const RecordBatch b = Full();
  Record r;
  for (int64_t row : {4, 0, 3, 1, 2}) {
    SCOPED_TRACE(row);
    const auto i = static_cast<size_t>(row);
    b.FieldsAt(row, &r);
    EXPECT_EQ(r.id, ids_[i]);
    EXPECT_EQ(r.payload_json, payloads_[i]);
    EXPECT_EQ(r.shard_id, shard_ids_[i] == kNoShardId ? std::nullopt : std::optional<int64_t>(shard_ids_[i]));
    EXPECT_EQ(r.routing_context, contexts_[i]);
    EXPECT_EQ(b.VectorAt(row).data(), data_.row(row));  // not a copy
    EXPECT_EQ(b.VectorAt(row).size(), 3u);
  }
  // Without columns: the row number is the id, and nothing else is set.
  const RecordBatch bare{data_.rows, data_.cols, data_.data.data()};
  r.payload_json = "{}";
  r.shard_id = 1;
  r.routing_context = RoutingContext{};
  bare.FieldsAt(3, &r);
  EXPECT_EQ(r.id, RecordId(int64_t{3}));
  EXPECT_FALSE(r.payload_json || r.shard_id || r.routing_context);
  // int64 ids.
  RecordBatch ints = bare;
  const std::vector<int64_t> int_ids = {50, 51, 52, 53, 54};
  ints.int_ids = int_ids;
  ints.FieldsAt(2, &r);
  EXPECT_EQ(r.id, RecordId(int64_t{52}));
}

TEST_F(RecordBatchTest, AsAStreamEveryRowIsCopiedOutInOrderAndRewinds) {
  const RecordBatch b = Full();
  RecordBatchSource source(b);
  EXPECT_EQ(source.SizeHint(), 5);
  for (int pass = 0; pass < 2; ++pass) {
    ASSERT_TRUE(source.Rewind().ok());
    Record r;
    for (int64_t row = 0; row < 5; ++row) {
      auto more = source.Next(&r);
      ASSERT_TRUE(more.ok() && *more) << row;
      EXPECT_EQ(r.id, ids_[static_cast<size_t>(row)]);
      EXPECT_EQ(r.vector, std::vector<float>(data_.row(row), data_.row(row) + 3));
    }
    auto end = source.Next(&r);
    ASSERT_TRUE(end.ok());
    EXPECT_FALSE(*end);
  }
  RecordBatch bad = b;
  bad.payloads = std::span<const std::optional<std::string>>(payloads_).first(4);
  RecordBatchSource bad_source(bad);
  Record r;
  auto first = bad_source.Next(&r);
  ASSERT_FALSE(first.ok());
  EXPECT_THAT(first.status().message(), HasSubstr("payloads has 4 entries for 5 rows"));
}

}  // namespace
}  // namespace shardvec
