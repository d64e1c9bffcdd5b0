// The metric events a write and a reader send to a MetricsSink: names, payloads, order, and that a
// sink may call back into the reader (it is never called under the reader's locks) or throw.
#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>
#include <set>
#include <stdexcept>

#include "shardvec/metrics.h"
#include "shardvec/reader.h"
#include "shardvec/writer.h"
#include "store/local_store.h"
#include "support/forwarding_store.h"
#include "support/test_util.h"

namespace shardvec {
namespace {
namespace ev = metric_events;

struct Recorded {
  std::string event;
  MetricPayload payload;
};

class RecordingSink : public MetricsSink {
 public:
  void Emit(std::string_view event, const MetricPayload& payload) override {
    if (on_emit) on_emit(event);
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back({std::string(event), payload});
  }
  std::vector<Recorded> Take() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::exchange(events_, {});
  }
  std::function<void(std::string_view)> on_emit;

 private:
  std::mutex mu_;
  std::vector<Recorded> events_;
};

int64_t Int(const Recorded& r, const std::string& key) { return std::get<int64_t>(r.payload.at(key)); }
std::string Str(const Recorded& r, const std::string& key) { return std::get<std::string>(r.payload.at(key)); }
std::vector<std::string> Names(const std::vector<Recorded>& events) {
  std::vector<std::string> out;
  for (const Recorded& r : events) out.push_back(r.event);
  return out;
}

class MetricEventsTest : public ::testing::Test {
 protected:
  Result<BuildResult> Write(const std::string& run_id, std::shared_ptr<MetricsSink> sink) {
    WriteConfig c;
    c.store = (tmp_ / "store").string();
    c.local_root = (tmp_ / "build").string();
    c.index.dim = data_.cols;
    c.index.metric = Metric::kL2;
    c.sharding.strategy = Strategy::kExplicit;
    c.sharding.num_dbs = 3;
    c.run_id = run_id;
    c.metrics = std::move(sink);
    VectorRecordSource source(testing::MakeRecords(data_, false, 3));
    return WriteSharded(c, source);
  }
  ReaderOptions Options(std::shared_ptr<MetricsSink> sink) {
    ReaderOptions o;
    o.store = (tmp_ / "store").string();
    o.cache_dir = (tmp_ / "cache").string();
    o.metrics = std::move(sink);
    return o;
  }
  Matrix data_ = testing::RandomMatrix(300, 8, 5);
  testing::TempDir tmp_;
};

TEST_F(MetricEventsTest, WriteSendsStartedShardsPublishedCompletedWithPayloads) {
  auto sink = std::make_shared<RecordingSink>();
  auto built = Write("run-a", sink);
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  const auto events = sink->Take();
  ASSERT_EQ(Names(events), (std::vector<std::string>{std::string(ev::kWriteStarted), std::string(ev::kShardWriteCompleted),
                                                     std::string(ev::kShardWriteCompleted), std::string(ev::kShardWriteCompleted),
                                                     std::string(ev::kWritePublished), std::string(ev::kWriteCompleted)}));
  EXPECT_EQ(Str(events[0], "run_id"), "run-a");
  int64_t rows = 0;
  std::set<int64_t> dbs;
  for (size_t i = 1; i <= 3; ++i) {
    rows += Int(events[i], "row_count");
    dbs.insert(Int(events[i], "db_id"));
    EXPECT_GT(Int(events[i], "db_bytes"), 0);
  }
  EXPECT_EQ(rows, 300);
  EXPECT_EQ(dbs, (std::set<int64_t>{0, 1, 2}));
  EXPECT_EQ(Str(events[4], "manifest_ref"), built->manifest_ref);
  EXPECT_EQ(Str(events[5], "run_id"), "run-a");
  EXPECT_EQ(Int(events[5], "total_vectors"), 300);
  EXPECT_EQ(Int(events[5], "num_shards"), 3);
  EXPECT_GE(Int(events[5], "elapsed_ms"), 0);  // an int, as the reference has it
}

TEST_F(MetricEventsTest, ReaderSendsInitializedSearchShardEventsRefreshedClosed) {
  ASSERT_TRUE(Write("run-a", nullptr).ok());
  auto sink = std::make_shared<RecordingSink>();
  // Through a wrapper the folder store is read as a remote one: shards are downloaded (a folder
  // store itself is read in place, with no download to report).
  auto reader = ShardedVectorReader::Open(
      Options(sink), std::make_shared<testing::ForwardingStore>(std::make_shared<LocalStore>(tmp_ / "store")));
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  // A sink may call back into the reader: it is never called while the reader holds a lock.
  sink->on_emit = [r = reader->get()](std::string_view) { (void)r->Info(); (void)r->Health(); };
  auto events = sink->Take();
  ASSERT_EQ(Names(events), std::vector<std::string>{std::string(ev::kReaderInitialized)});
  EXPECT_EQ(Str(events[0], "s3_prefix"), "file://" + (tmp_ / "store").string());
  EXPECT_EQ(Int(events[0], "num_shards"), 3);

  SearchOptions two;
  two.shard_ids = std::vector<int64_t>{0, 2};
  auto r = (*reader)->Search(std::span<const float>(data_.row(4), 8), 5, two);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  events = sink->Take();
  const std::vector<std::string> listed = Names(events);
  const std::multiset<std::string> names(listed.begin(), listed.end());
  EXPECT_EQ(names.count(std::string(ev::kShardDownload)), 2u);
  EXPECT_EQ(names.count(std::string(ev::kShardSearch)), 2u);
  ASSERT_EQ(events.back().event, ev::kSearch);  // after its shards
  EXPECT_EQ(Int(events.back(), "top_k"), 5);
  EXPECT_EQ(Int(events.back(), "num_shards_queried"), 2);
  EXPECT_EQ(Int(events.back(), "num_results"), 5);
  EXPECT_GE(std::get<double>(events.back().payload.at("elapsed_ms")), 0.0);
  // A shard scanned after another has given top_k hits returns only hits nearer than that one's
  // k-th (early stopping), so its num_results may be below top_k: with one usable CPU the shards run
  // one after the other. The first scan to start has no bound and gives all 5 (each shard has 100
  // rows); together the shards give at least the 5 merged results.
  int64_t most = 0, total = 0;
  for (const Recorded& e : events) {
    if (e.event == ev::kShardSearch) {
      EXPECT_TRUE(Int(e, "shard_id") == 0 || Int(e, "shard_id") == 2);
      EXPECT_EQ(Int(e, "top_k"), 5);
      EXPECT_LE(Int(e, "num_results"), 5);
      most = std::max(most, Int(e, "num_results"));
      total += Int(e, "num_results");
      EXPECT_EQ(Int(e, "num_queries"), 1);
    }
    if (e.event == ev::kShardDownload) EXPECT_GT(Int(e, "bytes"), 0);
  }
  EXPECT_EQ(most, 5);
  EXPECT_GE(total, 5);
  // Cached shards are not downloaded again; a batch reports one search per query.
  auto batch = (*reader)->BatchSearch(testing::RandomMatrix(4, 8, 9), 3, two);
  ASSERT_TRUE(batch.ok());
  events = sink->Take();
  EXPECT_EQ(std::count_if(events.begin(), events.end(), [](const Recorded& e) { return e.event == ev::kSearch; }), 4);
  EXPECT_EQ(std::count_if(events.begin(), events.end(), [](const Recorded& e) { return e.event == ev::kShardDownload; }), 0);

  // No change: no event. A new snapshot: refreshed with its manifest_ref.
  ASSERT_TRUE((*reader)->Refresh().ok());
  EXPECT_TRUE(sink->Take().empty());
  auto second = Write("run-b", nullptr);
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(*(*reader)->Refresh());
  events = sink->Take();
  ASSERT_EQ(Names(events), std::vector<std::string>{std::string(ev::kReaderRefreshed)});
  EXPECT_EQ(Str(events[0], "manifest_ref"), second->manifest_ref);

  (*reader)->Close();
  (*reader)->Close();
  events = sink->Take();
  ASSERT_EQ(Names(events), std::vector<std::string>{std::string(ev::kReaderClosed)});
  EXPECT_TRUE(events[0].payload.empty());
}

TEST_F(MetricEventsTest, ASinkThatThrowsDoesNotFailWritesOrSearches) {
  class Throwing : public MetricsSink {
   public:
    void Emit(std::string_view, const MetricPayload&) override { ++calls; throw std::runtime_error("sink down"); }
    std::atomic<int> calls{0};
  };
  auto sink = std::make_shared<Throwing>();
  ASSERT_TRUE(Write("run-a", sink).ok());
  EXPECT_EQ(sink->calls.load(), 6);
  auto reader = ShardedVectorReader::Open(Options(sink));
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  SearchOptions all;
  all.shard_ids = std::vector<int64_t>{0, 1, 2};
  auto r = (*reader)->Search(std::span<const float>(data_.row(0), 8), 3, all);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->results.size(), 3u);
  EXPECT_GT(sink->calls.load(), 7);
}

}  // namespace
}  // namespace shardvec
