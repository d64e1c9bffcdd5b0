// Filtered search through the reader on an 8-shard snapshot with sub-lists whose shard b holds blob
// b of the data (the centroids are the blobs' centres): results equal a brute force over the
// passing rows at 50 % to 0.01 % selectivity and for every column type; never fewer than top_k
// while that many rows pass; shard_ids; shards the manifest's statistics rule out are never opened
// (a counting store sees every download) and give their probe slot to the next shard in routing
// order; each shard's bitmap is evaluated once per call and kept across calls.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <numeric>
#include <random>
#include <set>

#include <nlohmann/json.hpp>

#include "shardvec/reader.h"
#include "shardvec/records.h"
#include "shardvec/writer.h"
#include "store/local_store.h"
#include "support/forwarding_store.h"
#include "support/test_util.h"

namespace shardvec {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kDim = 16;
constexpr int64_t kShards = 8;
constexpr int64_t kRows = 10000;  // so sel < 1 passes 0.01 % of the rows
constexpr int64_t kTopK = 10;

int64_t BlobOf(int64_t row) { return row % kShards; }

// Row `row`'s payload: sel (a permutation of 0..kRows-1), blob, and one column of each type, some
// of them null (a missing key or JSON null).
nlohmann::json PayloadOf(int64_t row, const std::vector<int64_t>& sel) {
  const int64_t blob = BlobOf(row);
  nlohmann::json p = {{"sel", sel[static_cast<size_t>(row)]},
                      {"blob", blob},
                      {"region", fmt::format("r{}", blob)},
                      {"price", static_cast<double>(blob) * 10.0 + static_cast<double>(row % 10) * 0.5},
                      {"hot", blob == 3},
                      {"tags", row % 2 == 0 ? nlohmann::json{fmt::format("b{}", blob), "even"}
                                            : nlohmann::json::array({fmt::format("b{}", blob)})}};
  const int64_t l = row % 7;
  if (l < 5) p["lang"] = std::vector<std::string>{"en", "de", "fr", "en", "es"}[static_cast<size_t>(l)];
  if (l == 5) p["lang"] = nullptr;
  return p;
}

// A counting view of a folder store: every shard download is recorded.
class CountingStore : public testing::ForwardingStore {
 public:
  explicit CountingStore(const fs::path& root) : ForwardingStore(std::make_shared<LocalStore>(root)) {}
  Status GetToFile(std::string_view key, const fs::path& dest, int64_t max_bytes) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      downloads_.insert(std::string(key));
    }
    return ForwardingStore::GetToFile(key, dest, max_bytes);
  }
  // The db ids of the shards downloaded so far.
  std::set<int64_t> Shards() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::set<int64_t> out;
    for (const std::string& key : downloads_) {
      const size_t at = key.find("/db=");
      if (at != std::string::npos) out.insert(std::stoll(key.substr(at + 4, 5)));
    }
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::set<std::string> downloads_;
};

class FilteredReaderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_ = new Matrix(Blobs(kRows, 5));
    queries_ = new Matrix(Blobs(16, 6));
    sel_ = new std::vector<int64_t>(kRows);
    std::iota(sel_->begin(), sel_->end(), int64_t{0});
    std::shuffle(sel_->begin(), sel_->end(), std::mt19937_64(7));
    store_dir_ = new testing::TempDir();
    ASSERT_TRUE(Write("run-a").ok());
  }
  static void TearDownTestSuite() {
    delete data_;
    delete queries_;
    delete sel_;
    delete store_dir_;
  }

  // Row r near the centre of blob r % 8 (50 along axis r % 8), unit noise.
  static Matrix Blobs(int64_t rows, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> noise;
    std::vector<float> values(static_cast<size_t>(rows * kDim));
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t d = 0; d < kDim; ++d) {
        values[static_cast<size_t>(r * kDim + d)] = noise(rng) + (d == BlobOf(r) ? 50.0f : 0.0f);
      }
    }
    return testing::MakeMatrix(rows, kDim, std::move(values));
  }

  static Status Write(const std::string& run_id) {
    WriteConfig c;
    c.store = (store_dir_->path() / "store").string();
    c.local_root = (store_dir_->path() / "build").string();
    c.run_id = run_id;
    c.index.dim = kDim;
    c.index.metric = Metric::kL2;
    std::vector<float> centres(static_cast<size_t>(kShards * kDim), 0.0f);
    for (int64_t b = 0; b < kShards; ++b) centres[static_cast<size_t>(b * kDim + b)] = 50.0f;
    c.sharding.centroids = testing::MakeMatrix(kShards, kDim, std::move(centres));
    c.filter_columns = {{"sel", "int"}, {"blob", "int"}, {"region", "string"}, {"price", "double"},
                        {"hot", "bool"}, {"tags", "list<string>"}, {"lang", "string"}};
    std::vector<Record> records;
    for (int64_t r = 0; r < kRows; ++r) {
      Record record;
      record.id = RecordId(r);
      record.vector.assign(data_->row(r), data_->row(r) + kDim);
      record.payload_json = PayloadOf(r, *sel_).dump();
      records.push_back(std::move(record));
    }
    VectorRecordSource source(std::move(records));
    return WriteSharded(c, source).status();
  }

  // A reader through a counting store (which downloads every shard it opens) with its own cache.
  std::unique_ptr<ShardedVectorReader> Open(std::shared_ptr<CountingStore>* counting = nullptr,
                                            int64_t filter_cache_bytes = kDefaultFilterCacheBytes,
                                            std::shared_ptr<MetricsSink> metrics = nullptr) {
    ReaderOptions o;
    o.metrics = std::move(metrics);
    o.store = (store_dir_->path() / "store").string();
    o.cache_dir = (cache_dir_.path() / fmt::format("cache{}", readers_++)).string();
    o.filter_cache_bytes = filter_cache_bytes;
    auto store = std::make_shared<CountingStore>(store_dir_->path() / "store");
    if (counting != nullptr) *counting = store;
    auto r = ShardedVectorReader::Open(o, store);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : nullptr;
  }

  // The ids of the k nearest rows to `query` among those `passes` (and in `shards`, when given).
  static std::vector<std::pair<double, int64_t>> Truth(const float* query, const std::function<bool(int64_t)>& passes,
                                                       int64_t k) {
    std::vector<int64_t> rows;
    std::vector<float> values;
    for (int64_t r = 0; r < kRows; ++r) {
      if (!passes(r)) continue;
      rows.push_back(r);
      values.insert(values.end(), data_->row(r), data_->row(r) + kDim);
    }
    const Matrix m = testing::MakeMatrix(static_cast<int64_t>(rows.size()), kDim, std::move(values));
    auto top = testing::BruteForce(m, query, Metric::kL2, k);
    for (auto& [d, row] : top) row = rows[static_cast<size_t>(row)];
    return top;
  }

  static std::span<const float> Query(int64_t q) { return {queries_->row(q), static_cast<size_t>(kDim)}; }

  static void ExpectEqualsTruth(const SearchResponse& r, const std::vector<std::pair<double, int64_t>>& truth,
                                const std::string& context) {
    ASSERT_EQ(r.results.size(), truth.size()) << context;
    for (size_t i = 0; i < truth.size(); ++i) {
      EXPECT_EQ(r.results[i].id, RecordId(truth[i].second)) << context << " rank " << i;
      EXPECT_NEAR(r.results[i].score, truth[i].first, 1e-4 * std::max(1.0, truth[i].first)) << context;
    }
  }

  static int64_t Sel(int64_t row) { return (*sel_)[static_cast<size_t>(row)]; }

  static Matrix* data_;
  static Matrix* queries_;
  static std::vector<int64_t>* sel_;
  static testing::TempDir* store_dir_;
  testing::TempDir cache_dir_;
  int readers_ = 0;
};

Matrix* FilteredReaderTest::data_ = nullptr;
Matrix* FilteredReaderTest::queries_ = nullptr;
std::vector<int64_t>* FilteredReaderTest::sel_ = nullptr;
testing::TempDir* FilteredReaderTest::store_dir_ = nullptr;

const std::vector<int64_t> kThresholds = {5000, 1000, 100, 10, 1};  // 50 %, 10 %, 1 %, 0.1 %, 0.01 %

TEST_F(FilteredReaderTest, FullProbingEqualsABruteForceOverThePassingRowsAtEverySelectivity) {
  auto reader = Open();
  ASSERT_NE(reader, nullptr);
  SearchOptions all;
  all.num_probes = kShards;
  for (const int64_t t : kThresholds) {
    all.filter = fmt::format("sel < {}", t);
    std::vector<SearchResponse> singles;
    for (int64_t q = 0; q < queries_->rows; ++q) {
      auto r = reader->Search(Query(q), kTopK, all);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      ExpectEqualsTruth(*r, Truth(queries_->row(q), [t](int64_t row) { return Sel(row) < t; }, kTopK),
                        fmt::format("{} query {}", *all.filter, q));
      singles.push_back(std::move(r).value());
    }
    auto batch = reader->BatchSearch(MatrixView{queries_->data.data(), queries_->rows, kDim}, kTopK, all);
    ASSERT_TRUE(batch.ok()) << batch.status().ToString();
    for (size_t q = 0; q < singles.size(); ++q) {
      ASSERT_EQ((*batch)[q].results.size(), singles[q].results.size());
      for (size_t i = 0; i < singles[q].results.size(); ++i) {
        EXPECT_EQ((*batch)[q].results[i].id, singles[q].results[i].id);
        EXPECT_EQ((*batch)[q].results[i].score, singles[q].results[i].score);
      }
    }
  }
}

TEST_F(FilteredReaderTest, DefaultProbingNeverReturnsFewerThanTopKWhileThatManyRowsPass) {
  auto reader = Open();
  ASSERT_NE(reader, nullptr);
  for (const int64_t t : kThresholds) {
    SearchOptions options;
    options.filter = fmt::format("sel < {}", t);
    for (int64_t q = 0; q < queries_->rows; ++q) {
      auto r = reader->Search(Query(q), kTopK, options);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_EQ(static_cast<int64_t>(r->results.size()), std::min(kTopK, t)) << *options.filter << " query " << q;
      EXPECT_EQ(r->num_shards_queried, static_cast<int64_t>(r->shard_ids.size()));
      for (const SearchHit& hit : r->results) {
        EXPECT_LT(nlohmann::json::parse(*hit.payload_json)["sel"].get<int64_t>(), t) << *options.filter;
      }
      // The nearest passing rows lie in the query's own blob's shard or beyond: with fewer than top_k
      // passing rows every shard that holds one was searched, so the answer is the brute force's.
      if (t < kTopK) {
        ExpectEqualsTruth(*r, Truth(queries_->row(q), [t](int64_t row) { return Sel(row) < t; }, kTopK),
                          *options.filter);
      }
    }
  }
}

TEST_F(FilteredReaderTest, AFilterPassingFewRowsIsExactAtDefaultProbingAndASparseOneRanksEveryShardsLists) {
  // Queries halfway between two blobs (a little nearer the first, whose shard the router picks):
  // their nearest passing rows lie in both shards. A filter whose passing rows, estimated from the
  // routed shard, number at most 16 x 10 x top_k (1 % and 0.1 % here) searches every shard that can
  // match, each once, so the answer is the brute force's.
  struct ShardScans : MetricsSink {
    void Emit(std::string_view event, const MetricPayload& payload) override {
      if (event != metric_events::kShardSearch) return;
      std::lock_guard lock(mu);
      ids.push_back(std::get<int64_t>(payload.at("shard_id")));
    }
    std::mutex mu;
    std::vector<int64_t> ids;
  };
  auto scans = std::make_shared<ShardScans>();
  auto reader = Open(nullptr, kDefaultFilterCacheBytes, scans);
  ASSERT_NE(reader, nullptr);
  for (const int64_t t : {int64_t{100}, int64_t{10}}) {
    SearchOptions options;
    options.filter = fmt::format("sel < {}", t);
    for (int64_t a = 0; a < kShards; ++a) {
      const int64_t b = (a + 1) % kShards;
      std::vector<float> query(static_cast<size_t>(kDim), 0.0f);
      query[static_cast<size_t>(a)] = 25.5f;
      query[static_cast<size_t>(b)] = 24.5f;
      scans->ids.clear();
      auto r = reader->Search(query, kTopK, options);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      // Every blob holding a passing row is a shard that can match (the others may be ruled out
      // by the statistics); each is scanned once.
      std::set<int64_t> matching;
      for (int64_t row = 0; row < kRows; ++row) {
        if (Sel(row) < t) matching.insert(BlobOf(row));
      }
      EXPECT_GE(r->num_shards_queried, static_cast<int64_t>(matching.size())) << *options.filter;
      std::vector<int64_t> scanned = scans->ids;
      std::sort(scanned.begin(), scanned.end());
      std::vector<int64_t> queried = r->shard_ids;
      std::sort(queried.begin(), queried.end());
      EXPECT_EQ(scanned, queried) << *options.filter << ": shards scanned, one event per scan";
      ExpectEqualsTruth(*r, Truth(query.data(), [t](int64_t row) { return Sel(row) < t; }, kTopK),
                        fmt::format("{} between blobs {} and {}", *options.filter, a, b));
    }
    // The same queries as one batch.
    std::vector<float> batch_rows;
    std::vector<std::vector<std::pair<double, int64_t>>> truths;
    for (int64_t a = 0; a < kShards; ++a) {
      std::vector<float> query(static_cast<size_t>(kDim), 0.0f);
      query[static_cast<size_t>(a)] = 25.5f;
      query[static_cast<size_t>((a + 1) % kShards)] = 24.5f;
      truths.push_back(Truth(query.data(), [t](int64_t row) { return Sel(row) < t; }, kTopK));
      batch_rows.insert(batch_rows.end(), query.begin(), query.end());
    }
    auto batch = reader->BatchSearch(MatrixView{batch_rows.data(), kShards, kDim}, kTopK, options);
    ASSERT_TRUE(batch.ok()) << batch.status().ToString();
    ASSERT_EQ(batch->size(), truths.size());
    for (size_t q = 0; q < truths.size(); ++q) {
      ExpectEqualsTruth((*batch)[q], truths[q], fmt::format("{} batch query {}", *options.filter, q));
    }
  }
  // At 10 % the sub-lists an unfiltered query would scan in the routed shard hold too few passing
  // rows (about 21 of the 100 wanted), and the snapshot too many to score them all: the nearest of
  // every shard's lists are ranked together, and lists are taken until they hold 100 passing rows.
  // That fills every answer and finds most of the true nearest.
  SearchOptions options;
  options.filter = "sel < 1000";
  int64_t hits = 0;
  for (int64_t a = 0; a < kShards; ++a) {
    std::vector<float> query(static_cast<size_t>(kDim), 0.0f);
    query[static_cast<size_t>(a)] = 25.5f;
    query[static_cast<size_t>((a + 1) % kShards)] = 24.5f;
    auto r = reader->Search(query, kTopK, options);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(static_cast<int64_t>(r->results.size()), kTopK);
    std::set<RecordId> truth;
    for (const auto& [score, row] : Truth(query.data(), [](int64_t row) { return Sel(row) < 1000; }, kTopK)) {
      truth.insert(RecordId(row));
    }
    for (const SearchHit& hit : r->results) hits += truth.contains(hit.id) ? 1 : 0;
  }
  EXPECT_GE(hits, kShards * kTopK * 3 / 4) << "recall@10 of the 10 % filter at default probing";
}

TEST_F(FilteredReaderTest, EveryColumnTypeAtFullProbingEqualsABruteForce) {
  auto reader = Open();
  ASSERT_NE(reader, nullptr);
  auto lang = [](int64_t row) { return row % 7 < 5 ? std::optional<std::string>(std::vector<std::string>{"en", "de", "fr", "en", "es"}[static_cast<size_t>(row % 7)]) : std::nullopt; };
  const std::vector<std::pair<std::string, std::function<bool(int64_t)>>> cases = {
      {"lang == 'en'", [&](int64_t r) { return lang(r) == "en"; }},
      {"lang != 'en'", [&](int64_t r) { return lang(r) && *lang(r) != "en"; }},  // nulls pass neither
      {"lang == null", [&](int64_t r) { return !lang(r); }},
      {"price >= 20.0 && price < 35.5", [](int64_t r) {
         const double p = static_cast<double>(BlobOf(r)) * 10.0 + static_cast<double>(r % 10) * 0.5;
         return p >= 20.0 && p < 35.5;
       }},
      {"hot", [](int64_t r) { return BlobOf(r) == 3; }},
      {"!hot && sel < 300", [](int64_t r) { return BlobOf(r) != 3 && Sel(r) < 300; }},
      {"'even' in tags && sel < 2000", [](int64_t r) { return r % 2 == 0 && Sel(r) < 2000; }},
      {"region.startsWith('r1') || region in ['r6']", [](int64_t r) { return BlobOf(r) == 1 || BlobOf(r) == 6; }},
      {"blob >= 6 && sel < 50", [](int64_t r) { return BlobOf(r) >= 6 && Sel(r) < 50; }},
  };
  SearchOptions all;
  all.num_probes = kShards;
  for (const auto& [filter, passes] : cases) {
    all.filter = filter;
    for (int64_t q = 0; q < queries_->rows; q += 3) {
      auto r = reader->Search(Query(q), kTopK, all);
      ASSERT_TRUE(r.ok()) << filter << ": " << r.status().ToString();
      ExpectEqualsTruth(*r, Truth(queries_->row(q), passes, kTopK), fmt::format("{} query {}", filter, q));
    }
  }
}

TEST_F(FilteredReaderTest, ShardIdsSearchExactlyThoseShards) {
  std::shared_ptr<CountingStore> counting;
  auto reader = Open(&counting);
  ASSERT_NE(reader, nullptr);
  SearchOptions options;
  options.shard_ids = std::vector<int64_t>{2, 5};
  options.filter = "sel < 1000";
  for (int64_t q = 0; q < queries_->rows; q += 2) {
    auto r = reader->Search(Query(q), kTopK, options);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ExpectEqualsTruth(*r, Truth(queries_->row(q), [](int64_t row) {
      return (BlobOf(row) == 2 || BlobOf(row) == 5) && Sel(row) < 1000;
    }, kTopK), "shard_ids 2, 5");
    EXPECT_EQ(r->shard_ids, (std::vector<int64_t>{2, 5}));
  }
  // Named shards are searched as named, even one the statistics rule out.
  options.filter = "region == 'r5'";
  auto r = reader->Search(Query(0), kTopK, options);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->shard_ids, (std::vector<int64_t>{2, 5}));
  ExpectEqualsTruth(*r, Truth(queries_->row(0), [](int64_t row) { return BlobOf(row) == 5; }, kTopK), "r5");
  EXPECT_EQ(counting->Shards(), (std::set<int64_t>{2, 5}));
}

TEST_F(FilteredReaderTest, ShardsTheStatisticsRuleOutAreNeverOpened) {
  // Each filter passes rows of blob 3 only, through another column type; the query sits in blob 5.
  for (const std::string filter : {"blob == 3", "region == 'r3'", "hot", "price >= 30.0 && price < 40.0",
                                   "'b3' in tags && sel >= 0", "hot == true || blob == 42"}) {
    std::shared_ptr<CountingStore> counting;
    auto reader = Open(&counting);
    ASSERT_NE(reader, nullptr);
    SearchOptions options;
    options.filter = filter;
    auto r = reader->Search(Query(5), kTopK, options);
    ASSERT_TRUE(r.ok()) << filter << ": " << r.status().ToString();
    // (Default probing scans the nearest sub-lists of shard 3: top_k of its rows, not necessarily the nearest.)
    ASSERT_EQ(static_cast<int64_t>(r->results.size()), kTopK) << filter;
    for (const SearchHit& hit : r->results) EXPECT_EQ(BlobOf(std::get<int64_t>(hit.id)), 3) << filter;
    EXPECT_EQ(r->shard_ids, std::vector<int64_t>{3}) << filter;
    EXPECT_EQ(r->num_shards_queried, 1) << filter;
    auto batch = reader->BatchSearch(MatrixView{queries_->data.data(), queries_->rows, kDim}, kTopK, options);
    ASSERT_TRUE(batch.ok()) << batch.status().ToString();
    for (const SearchResponse& b : *batch) EXPECT_EQ(b.shard_ids, std::vector<int64_t>{3}) << filter;
    EXPECT_EQ(counting->Shards(), std::set<int64_t>{3}) << filter;
  }
  // A filter no shard can pass opens none and answers nothing.
  std::shared_ptr<CountingStore> counting;
  auto reader = Open(&counting);
  ASSERT_NE(reader, nullptr);
  SearchOptions options;
  options.filter = "blob > 7 || sel < 0";
  auto r = reader->Search(Query(1), kTopK, options);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->results.empty());
  EXPECT_EQ(r->num_shards_queried, 0);
  EXPECT_TRUE(counting->Shards().empty());
}

TEST_F(FilteredReaderTest, APrunedShardGivesItsProbeSlotToTheNextShardInRoutingOrder) {
  std::shared_ptr<CountingStore> counting;
  auto reader = Open(&counting);
  ASSERT_NE(reader, nullptr);
  for (int64_t q = 0; q < 8; ++q) {
    const int64_t own = BlobOf(q);  // the query's blob: its shard comes first in routing order
    auto routed = reader->Route(Query(q), kShards, std::nullopt);
    ASSERT_TRUE(routed.ok());
    ASSERT_EQ((*routed)[0], own);
    std::vector<int64_t> expected(routed->begin() + 1, routed->end());  // the routing order, less the pruned shard
    SearchOptions options;
    options.num_probes = 2;
    options.sublist_probes = 1000000;  // every sub-list of the candidate shards: each is searched
    options.filter = fmt::format("blob != {}", own);
    auto r = reader->Search(Query(q), kTopK, options);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    // The shards searched follow the pruned one in routing order, as many as without a filter; they
    // hold plenty of passing rows, so no further shard is added.
    SearchOptions unfiltered;
    unfiltered.num_probes = 2;
    unfiltered.sublist_probes = 1000000;
    auto plain = reader->Search(Query(q), kTopK, unfiltered);
    ASSERT_TRUE(plain.ok());
    EXPECT_EQ(plain->shard_ids.front(), own);
    ASSERT_EQ(r->shard_ids.size(), plain->shard_ids.size()) << *options.filter;
    expected.resize(r->shard_ids.size());
    EXPECT_EQ(r->shard_ids, expected) << *options.filter;
  }
  EXPECT_EQ(counting->Shards().size(), static_cast<size_t>(kShards));  // the unfiltered searches opened them
}

TEST_F(FilteredReaderTest, EachShardsBitmapIsEvaluatedOncePerCallAndKeptAcrossCalls) {
  // 200 queries: more than one scan task per shard.
  std::vector<float> values;
  for (int64_t i = 0; i < 200; ++i) values.insert(values.end(), queries_->row(i % 16), queries_->row(i % 16) + kDim);
  const Matrix many = testing::MakeMatrix(200, kDim, values);
  const MatrixView view{many.data.data(), many.rows, kDim};
  SearchOptions all;
  all.num_probes = kShards;
  all.filter = "sel < 1000";
  auto reader = Open();
  ASSERT_NE(reader, nullptr);
  auto first = reader->BatchSearch(view, kTopK, all);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(reader->Stats().filter_bitmaps_evaluated, kShards);
  EXPECT_EQ(reader->Stats().filter_bitmaps_reused, 0);
  // The same filter written otherwise: kept bitmaps, the same answers.
  all.filter = "1000 > sel";
  auto again = reader->BatchSearch(view, kTopK, all);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(reader->Stats().filter_bitmaps_evaluated, kShards);
  EXPECT_EQ(reader->Stats().filter_bitmaps_reused, kShards);
  for (size_t q = 0; q < first->size(); ++q) EXPECT_EQ((*again)[q].results.size(), (*first)[q].results.size());
  auto single = reader->Search(Query(0), kTopK, all);
  ASSERT_TRUE(single.ok());
  EXPECT_EQ(reader->Stats().filter_bitmaps_evaluated, kShards);
  // Another filter is evaluated.
  all.filter = "sel < 999";
  ASSERT_TRUE(reader->BatchSearch(view, kTopK, all).ok());
  EXPECT_EQ(reader->Stats().filter_bitmaps_evaluated, 2 * kShards);

  // No cache: each call evaluates, still once per shard.
  auto uncached = Open(nullptr, 0);
  ASSERT_NE(uncached, nullptr);
  for (int round = 1; round <= 2; ++round) {
    ASSERT_TRUE(uncached->BatchSearch(view, kTopK, all).ok());
    EXPECT_EQ(uncached->Stats().filter_bitmaps_evaluated, round * kShards);
    EXPECT_EQ(uncached->Stats().filter_bitmaps_reused, 0);
  }

  // A new snapshot: its shards' bitmaps are evaluated afresh.
  ASSERT_TRUE(Write("run-b").ok());
  auto refreshed = reader->Refresh();
  ASSERT_TRUE(refreshed.ok() && *refreshed);
  ASSERT_TRUE(reader->BatchSearch(view, kTopK, all).ok());
  EXPECT_EQ(reader->Stats().filter_bitmaps_evaluated, 3 * kShards);

  // A negative budget is refused, naming it.
  ReaderOptions o;
  o.store = (store_dir_->path() / "store").string();
  o.cache_dir = (cache_dir_.path() / "refused").string();
  o.filter_cache_bytes = -1;
  auto refused = ShardedVectorReader::Open(o);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("filter_cache_bytes must be >= 0 (got -1)"), std::string::npos)
      << refused.status().ToString();
}


// A snapshot of 4 shards x 300 sub-lists (1200 in all, so the snapshot-wide list table is grouped),
// 24,000 rows in 60 clusters, with a `sel` column (a permutation). At 8 % the lists an unfiltered
// query would scan in its routed shards (50 lists of 20 rows) hold too few passing rows (80 of the 100
// wanted), and the snapshot too many to score all (1,920, above 16 x 100): each query ranks the
// nearest lists of every shard. Recall@10 against a brute force over the
// passing rows, no underfill, single = batch; max_extra_probes = 0 keeps it to its routed shards; at
// full probing the answer is exact.
TEST(FilteredSnapshotListsTest, ASparseFilterRanksEveryShardsListsAndFindsTheNearestPassingRows) {
  constexpr int64_t kListRows = 24000, kListDim = 16, kListShards = 4, kK = 10;
  testing::TempDir dir;
  const Matrix data = testing::ClusteredMatrix(kListRows, kListDim, 60, 11);
  const Matrix queries = testing::ClusteredMatrix(40, kListDim, 60, 12);
  std::vector<int64_t> sel(static_cast<size_t>(kListRows));
  std::iota(sel.begin(), sel.end(), int64_t{0});
  std::shuffle(sel.begin(), sel.end(), std::mt19937_64(3));
  WriteConfig c;
  c.store = (dir.path() / "store").string();
  c.local_root = (dir.path() / "build").string();
  c.index.dim = kListDim;
  c.index.metric = Metric::kL2;
  c.sharding.num_dbs = kListShards;
  c.sharding.train_centroids = true;
  c.sharding.sublists_per_shard = 300;
  c.filter_columns = {{"sel", "int"}};
  std::vector<Record> records = testing::MakeRecords(data, false);
  for (size_t r = 0; r < records.size(); ++r) records[r].payload_json = nlohmann::json{{"sel", sel[r]}}.dump();
  VectorRecordSource source(std::move(records));
  auto built = WriteSharded(c, source);
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  ReaderOptions o;
  o.store = c.store;
  o.cache_dir = (dir.path() / "cache").string();
  auto reader = ShardedVectorReader::Open(o);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  const int64_t bound = kListRows * 8 / 100;
  SearchOptions options;
  options.filter = fmt::format("sel < {}", bound);
  auto truth_of = [&](int64_t q) {
    std::vector<int64_t> rows;
    std::vector<float> values;
    for (int64_t r = 0; r < kListRows; ++r) {
      if (sel[static_cast<size_t>(r)] >= bound) continue;
      rows.push_back(r);
      values.insert(values.end(), data.row(r), data.row(r) + kListDim);
    }
    const Matrix m = testing::MakeMatrix(static_cast<int64_t>(rows.size()), kListDim, std::move(values));
    std::set<RecordId> ids;
    for (const auto& [d, row] : testing::BruteForce(m, queries.row(q), Metric::kL2, kK)) {
      ids.insert(RecordId(rows[static_cast<size_t>(row)] * 3));  // MakeRecords' ids
    }
    return ids;
  };
  auto batch = (*reader)->BatchSearch(MatrixView{queries.data.data(), queries.rows, kListDim}, kK, options);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  int64_t found = 0;
  for (int64_t q = 0; q < queries.rows; ++q) {
    const std::span<const float> query(queries.row(q), static_cast<size_t>(kListDim));
    auto r = (*reader)->Search(query, kK, options);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(static_cast<int64_t>(r->results.size()), kK) << "query " << q;
    const std::set<RecordId> truth = truth_of(q);
    for (size_t i = 0; i < r->results.size(); ++i) {
      found += truth.contains(r->results[i].id) ? 1 : 0;
      EXPECT_LT(sel[static_cast<size_t>(std::get<int64_t>(r->results[i].id) / 3)], bound);
      EXPECT_EQ((*batch)[static_cast<size_t>(q)].results[i].id, r->results[i].id) << "query " << q << " rank " << i;
    }
    SearchOptions bounded = options;
    bounded.max_extra_probes = 0;
    auto kept = (*reader)->Search(query, kK, bounded);
    ASSERT_TRUE(kept.ok()) << kept.status().ToString();
    auto routed = (*reader)->Route(query, 2, std::nullopt);  // the routed candidate shards (2 x num_probes)
    ASSERT_TRUE(routed.ok());
    for (const int64_t shard : kept->shard_ids) {
      EXPECT_TRUE(std::find(routed->begin(), routed->end(), shard) != routed->end()) << "query " << q << " shard " << shard;
    }
    SearchOptions full = options;
    full.num_probes = kListShards;
    auto exact = (*reader)->Search(query, kK, full);
    ASSERT_TRUE(exact.ok());
    std::set<RecordId> got;
    for (const SearchHit& hit : exact->results) got.insert(hit.id);
    EXPECT_EQ(got, truth) << "query " << q << " at full probing";
  }
  EXPECT_GE(found, queries.rows * kK * 9 / 10) << "recall@10 of an 8 % filter at the default probing";
}

}  // namespace
}  // namespace shardvec
