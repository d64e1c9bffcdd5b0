// Text the writer stores must be UTF-8 (ids, payloads and manifests are JSON): text that is not is a
// clear InvalidArgument naming the row or the field, the run record ends "failed", and nothing
// throws or aborts. A build unwound by an exception still marks its run record failed.
#include <gtest/gtest.h>

#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/text_util.h"
#include "shardvec/object_store.h"
#include "shardvec/writer.h"
#include "support/test_util.h"

namespace shardvec {
namespace {

class TextInputTest : public ::testing::Test {
 protected:
  WriteConfig Config(Strategy strategy = Strategy::kLsh) const {
    WriteConfig c;
    c.store = (tmp_ / "store").string();
    c.local_root = (tmp_ / "build").string();
    c.index.dim = 4;
    c.index.metric = Metric::kL2;
    c.sharding.strategy = strategy;
    c.sharding.num_dbs = 2;
    return c;
  }
  // Every run record's text in the store.
  std::vector<std::string> RunRecords() const {
    std::vector<std::string> out;
    auto store = OpenStore((tmp_ / "store").string());
    if (!store.ok()) return out;
    auto runs = (*store)->List("runs/", "");
    if (!runs.ok()) return out;
    for (const ObjectInfo& o : runs->objects) out.push_back(*(*store)->Get(o.key));
    return out;
  }
  // Writing `records` fails with InvalidArgument holding `message` (itself UTF-8), and the one run
  // record written ends "failed" (UTF-8 too).
  void ExpectRefused(const WriteConfig& c, std::vector<Record> records, const std::string& message) const {
    VectorRecordSource source(std::move(records));
    auto r = WriteSharded(c, source);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(message), std::string::npos) << r.status().message();
    EXPECT_FALSE(FirstInvalidUtf8(r.status().message()).has_value());
    const std::vector<std::string> run_records = RunRecords();
    ASSERT_EQ(run_records.size(), 1u);
    EXPECT_NE(run_records[0].find("status: failed"), std::string::npos) << run_records[0];
    EXPECT_FALSE(FirstInvalidUtf8(run_records[0]).has_value()) << run_records[0];
  }
  testing::TempDir tmp_;
};

TEST_F(TextInputTest, StringIdThatIsNotUtf8IsRefusedNamingTheRow) {
  std::vector<Record> records = testing::MakeRecords(testing::RandomMatrix(10, 4, 1), /*string_ids=*/true);
  records[6].id = std::string("doc-\xff\x1b");
  ExpectRefused(Config(), std::move(records),
                "row 6: id is not valid UTF-8 (byte 0xFF at offset 4): 'doc-\\xff\\x1b'");
}

TEST_F(TextInputTest, PayloadThatIsNotUtf8IsRefusedNamingTheRecordWithoutQuotingRawBytes) {
  std::vector<Record> records = testing::MakeRecords(testing::RandomMatrix(10, 4, 2), /*string_ids=*/false);
  records[3].payload_json = std::string("{\"a\": \"\xc3\x28\"}");
  ExpectRefused(Config(), std::move(records),
                "record id=9 (row 3): payload is not valid UTF-8 (byte 0xC3 at offset 7)");
}

TEST_F(TextInputTest, RoutingContextStringThatIsNotUtf8IsRefusedNamingTheVariable) {
  WriteConfig c = Config(Strategy::kCel);
  c.sharding.cel_expr = "region";
  c.sharding.cel_columns = {{"region", "string"}};
  c.sharding.routing_values = std::vector<RoutingValue>{std::string("eu"), std::string("us")};
  c.sharding.num_dbs.reset();
  std::vector<Record> records = testing::MakeRecords(testing::RandomMatrix(6, 4, 3), false);
  for (Record& rec : records) rec.routing_context = RoutingContext{{"region", std::string("eu")}};
  records[4].routing_context = RoutingContext{{"region", std::string("e\xffu")}};
  ExpectRefused(c, std::move(records), "(row 4): routing_context['region'] is not valid UTF-8");
}

TEST_F(TextInputTest, ConfigTextsThatAreNotUtf8AreRefusedNamingTheFieldBeforeAnyWrite) {
  struct Case {
    std::string what;
    std::function<void(WriteConfig&)> spoil;
    std::string field;
  };
  const std::vector<Case> cases = {
      {"store", [&](WriteConfig& c) { c.store = (tmp_ / "st\xffore").string(); }, "store is not valid UTF-8"},
      {"routing value",
       [](WriteConfig& c) {
         c.sharding.routing_values = std::vector<RoutingValue>{std::string("eu"), std::string("\xfe")};
       },
       "routing_values[1] is not valid UTF-8"},
      {"cel_expr", [](WriteConfig& c) { c.sharding.cel_expr = "region == '\xc0\xaf'"; }, "cel_expr is not valid UTF-8"},
      {"custom field",
       [](WriteConfig& c) { c.custom_manifest_fields_json = {{"note", "\"\xed\xa0\x80\""}}; },
       "custom manifest field 'note' is not valid UTF-8"},
  };
  for (const Case& k : cases) {
    WriteConfig c = Config(Strategy::kCel);
    c.sharding.cel_expr = "region";
    c.sharding.cel_columns = {{"region", "string"}};
    c.sharding.routing_values = std::vector<RoutingValue>{std::string("eu"), std::string("us")};
    k.spoil(c);
    std::vector<Record> records = testing::MakeRecords(testing::RandomMatrix(2, 4, 4), false);
    for (Record& rec : records) rec.routing_context = RoutingContext{{"region", std::string("eu")}};
    VectorRecordSource source(std::move(records));
    auto r = WriteSharded(c, source);
    ASSERT_FALSE(r.ok()) << k.what;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << k.what;
    EXPECT_NE(r.status().message().find(k.field), std::string::npos) << r.status().message();
    EXPECT_FALSE(FirstInvalidUtf8(r.status().message()).has_value()) << k.what;
    EXPECT_TRUE(RunRecords().empty()) << k.what << ": refused before the run record is written";
  }
}

// A one-shot source whose third record throws: the writer does not catch it, but the run record it
// wrote must not stay "running".
class ThrowingSource : public RecordSource {
 public:
  Result<bool> Next(Record* out) override {
    if (next_ == 2) throw std::runtime_error("the source broke");
    out->id = next_;
    out->vector = {1.0f, static_cast<float>(next_), 0.0f, 0.0f};
    ++next_;
    return true;
  }
  Status Rewind() override { return next_ == 0 ? Status::OK() : Status::InvalidArgument("one-shot"); }
  bool CanRewind() const override { return false; }

 private:
  int64_t next_ = 0;
};

TEST_F(TextInputTest, RunRecordIsMarkedFailedWhenAnExceptionUnwindsTheBuild) {
  ThrowingSource source;
  EXPECT_THROW((void)WriteSharded(Config(), source), std::runtime_error);
  const std::vector<std::string> records = RunRecords();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_NE(records[0].find("status: failed"), std::string::npos) << records[0];
  EXPECT_NE(records[0].find("without a final status"), std::string::npos) << records[0];
}

}  // namespace
}  // namespace shardvec
