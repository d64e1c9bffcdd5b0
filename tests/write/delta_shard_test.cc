// A shard edited in place (write/delta_shard.h): what vec0 itself answers over it is the brute-force
// answer over the final rows; the reader's kernel over every list answers exactly as vec0 (rowids,
// scores and tie order), though the shard's rows are no longer in rowid or list order; replacing rows
// reuses their slots; and a shard that should be rebuilt whole is left untouched.
#include "write/delta_shard.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <limits>
#include <map>
#include <set>

#include "shard/filter_columns.h"
#include "shard/shard_builder.h"
#include "shard/shard_searcher.h"
#include "shard/sq8.h"
#include "shard/sq8_table.h"
#include "shard/vec0_storage.h"
#include "shard/sublists.h"
#include "write/base_shard.h"
#include "support/test_util.h"

namespace shardvec {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

constexpr int64_t kRows = 1500;
constexpr int64_t kDim = 24;

// Rows with ids 0..rows-1, payload {"row": id} on odd ids, a filter column over it.
void Build(const fs::path& path, const Matrix& data, Metric metric, bool int8 = false) {
  ShardBuildOptions options{.dim = kDim, .metric = metric};
  options.sublists = 25;
  options.int8_codes = int8;
  options.filter_columns = {FilterColumnSpec{"row", FilterType::kInt}};
  auto builder = ShardBuilder::Create(path, options);
  ASSERT_TRUE(builder.ok()) << builder.status().ToString();
  for (int64_t row = 0; row < data.rows; ++row) {
    std::optional<std::string> payload;
    if (row % 2 == 1) payload = fmt::format("{{\"row\": {}}}", row);
    ASSERT_TRUE((*builder)->Add(RecordId(row), data.row(row), payload).ok());
  }
  ASSERT_TRUE((*builder)->Seal().ok());
}

struct Edit {
  std::unordered_map<std::string, bool> changed;
  std::vector<std::optional<std::string>> payloads;
  ShardEdit edit;
  std::map<int64_t, std::vector<float>> final_rows;  // id -> vector after the edit
};

// Replaces ids [0, replaced), deletes [replaced, replaced + deleted), adds `added` new ids from 10000.
void MakeEdit(const Matrix& data, Metric metric, int64_t replaced, int64_t deleted, int64_t added, Edit* e,
              const Matrix& fresh) {
  for (int64_t row = 0; row < data.rows; ++row) e->final_rows[row].assign(data.row(row), data.row(row) + kDim);
  e->edit.dim = kDim;
  e->edit.metric = metric;
  e->edit.filter_columns = {FilterColumnSpec{"row", FilterType::kInt}};
  e->edit.changed = &e->changed;
  e->payloads.resize(static_cast<size_t>(replaced + added));
  for (int64_t i = 0; i < replaced + deleted; ++i) {
    const std::string text = EncodeOriginalId(RecordId(i));
    e->changed[text] = i < replaced;
    e->edit.expected_here.push_back(text);
    if (i >= replaced) e->final_rows.erase(i);
  }
  for (int64_t i = 0; i < replaced + added; ++i) {
    const int64_t id = i < replaced ? i : 10000 + i;
    e->payloads[static_cast<size_t>(i)] = fmt::format("{{\"row\": {}}}", id);
    e->edit.adds.push_back(ShardEdit::Row{RecordId(id), fresh.row(i), &e->payloads[static_cast<size_t>(i)]});
    e->final_rows[id].assign(fresh.row(i), fresh.row(i) + kDim);
  }
}

// The edit's final rows as a matrix, for brute force, and their ids in its row order.
Matrix FinalRows(const Edit& e, std::vector<int64_t>* ids) {
  Matrix all;
  all.cols = kDim;
  for (const auto& [id, v] : e.final_rows) {
    all.data.insert(all.data.end(), v.begin(), v.end());
    ids->push_back(id);
  }
  all.rows = static_cast<int64_t>(ids->size());
  return all;
}

TEST(ShardEditTest, VecZeroAndTheKernelAnswerTheFinalRowsExactly) {
  TempDir dir;
  for (const Metric metric : {Metric::kL2, Metric::kCosine}) {
    SCOPED_TRACE(MetricName(metric));
    const fs::path path = dir.path() / fmt::format("{}.db", MetricName(metric));
    const Matrix data = testing::ClusteredMatrix(kRows, kDim, 10, 8);
    const Matrix fresh = testing::ClusteredMatrix(400, kDim, 10, 11);
    Build(path, data, metric);
    Edit e;
    MakeEdit(data, metric, 200, 50, 150, &e, fresh);
    auto lists_before = ShardFileSublists(path, "s1");
    ASSERT_TRUE(lists_before.ok()) << lists_before.status().ToString();
    std::string why;
    auto edited = EditShardInPlace(path, "s1", e.edit, &why);
    ASSERT_TRUE(edited.ok()) << edited.status().ToString();
    ASSERT_TRUE(edited->has_value()) << why;
    EXPECT_EQ((*edited)->base_sublists, *lists_before);
    auto lists_after = ShardFileSublists(path, "s1");
    ASSERT_TRUE(lists_after.ok()) << lists_after.status().ToString();
    EXPECT_EQ((*edited)->sublists, *lists_after);
    EXPECT_EQ((*edited)->replaced, 200);
    EXPECT_EQ((*edited)->deleted, 50);
    EXPECT_EQ((*edited)->rows, kRows - 50 + 150);
    EXPECT_EQ((*edited)->deleted_ids.size(), 50u);

    std::vector<int64_t> ids;
    const Matrix all = FinalRows(e, &ids);
    auto knn = ShardSearcher::Open(path, kDim, metric, "s1", 2, ScanPath::kVec0Knn);
    auto kernel = ShardSearcher::Open(path, kDim, metric, "s1", 2);
    ASSERT_TRUE(knn.ok() && kernel.ok()) << knn.status().ToString() << kernel.status().ToString();
    ASSERT_NE((*kernel)->sublists(), nullptr);
    const auto lists = static_cast<int32_t>((*kernel)->sublists()->ranges.size());
    EXPECT_EQ(lists, (*edited)->sublists);
    std::vector<int32_t> every(static_cast<size_t>(lists));
    for (int32_t i = 0; i < lists; ++i) every[static_cast<size_t>(i)] = i;
    const Matrix queries = testing::ClusteredMatrix(6, kDim, 10, 9);
    std::vector<const float*> qs;
    for (int64_t q = 0; q < queries.rows; ++q) qs.push_back(queries.row(q));
    qs.push_back(fresh.row(3));  // an added row
    for (const int64_t k : {int64_t{1}, int64_t{10}, int64_t{100}}) {
      auto want = (*knn)->Scan(qs, k);
      std::vector<std::vector<int32_t>> all_lists(qs.size(), every);
      auto got = (*kernel)->Scan(qs, k, std::numeric_limits<double>::infinity(), all_lists);
      ASSERT_TRUE(want.ok() && got.ok());
      for (size_t q = 0; q < qs.size(); ++q) {
        const auto truth = testing::BruteForce(all, qs[q], metric, k);
        auto resolved = (*knn)->Resolve((*want)[q]);
        ASSERT_TRUE(resolved.ok());
        ASSERT_EQ(resolved->size(), truth.size());
        for (size_t i = 0; i < truth.size(); ++i) {
          EXPECT_EQ((*resolved)[i].id, RecordId(ids[static_cast<size_t>(truth[i].second)])) << "k " << k << " query " << q << " rank " << i;
        }
        ASSERT_EQ((*got)[q].size(), (*want)[q].size());
        for (size_t i = 0; i < (*got)[q].size(); ++i) {
          EXPECT_EQ((*got)[q][i].rowid, (*want)[q][i].rowid) << "k " << k << " query " << q << " rank " << i;
          EXPECT_EQ((*got)[q][i].score, (*want)[q][i].score) << "k " << k << " query " << q << " rank " << i;
        }
      }
    }
    // The filter column covers the added rows (even ids added have a payload too).
    const FilterColumns* columns = (*kernel)->filter_columns();
    ASSERT_NE(columns, nullptr);
    EXPECT_EQ(columns->rows, (*edited)->rows);
  }
}

TEST(ShardEditTest, ReplacedRowsReuseTheirSlotsSoTheShardDoesNotGrow) {
  TempDir dir;
  const fs::path path = dir.path() / "replace.db";
  const Matrix data = testing::ClusteredMatrix(kRows, kDim, 10, 8);
  const Matrix fresh = testing::ClusteredMatrix(400, kDim, 10, 11);
  Build(path, data, Metric::kL2);
  const auto before = fs::file_size(path);
  const auto built_mode = fs::status(path).permissions();
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);  // as a private download is
  Edit e;
  MakeEdit(data, Metric::kL2, 300, 0, 0, &e, fresh);
  std::string why;
  auto edited = EditShardInPlace(path, "s1", e.edit, &why);
  ASSERT_TRUE(edited.ok() && edited->has_value()) << edited.status().ToString() << why;
  EXPECT_EQ((*edited)->rows, kRows);
  // vec0 would have put 300 rows into new chunks; the freed slots take them. A few pages of the id
  // map, payloads, lists and filter columns may be added.
  EXPECT_LE(fs::file_size(path), before + 8 * 4096) << before;
  // The edited file is published: it takes the mode a built shard has, not the download's.
  EXPECT_EQ(fs::status(path).permissions(), built_mode);
}

TEST(ShardEditTest, AShardBetterRebuiltIsLeftUntouched) {
  TempDir dir;
  const Matrix data = testing::ClusteredMatrix(kRows, kDim, 10, 8);
  const Matrix fresh = testing::ClusteredMatrix(800, kDim, 10, 11);
  struct Case {
    const char* what;
    bool int8;
    int64_t replaced, deleted, added;
    const char* why;
  };
  for (const Case& c : {Case{"int8 codes, too many deletes", true, 0, 500, 0, "holes"},
                        Case{"too many appended rows", false, 0, 0, 600, "appended"}}) {
    SCOPED_TRACE(c.what);
    const fs::path path = dir.path() / fmt::format("{}.db", c.what);
    Build(path, data, Metric::kL2, c.int8);
    const std::string before = testing::ReadText(path);
    Edit e;
    MakeEdit(data, Metric::kL2, c.replaced, c.deleted, c.added, &e, fresh);
    std::string why;
    auto edited = EditShardInPlace(path, "s1", e.edit, &why);
    ASSERT_TRUE(edited.ok()) << edited.status().ToString();
    EXPECT_FALSE(edited->has_value());
    EXPECT_NE(why.find(c.why), std::string::npos) << why;
    EXPECT_EQ(testing::ReadText(path), before) << "the file was written";
  }
}

// Edits an int8 shard (200 replaced, 50 deleted, 150 added from the built rows' clusters; with
// `far_rows`, 40 of the added rows moved far outside the codes' ranges) and checks its codes: by rowid,
// every row's the codes of its final vector in the ranges expected (the built ones, or with far rows
// ranges trained on the final rows), a freed rowid's zero; the reader pre-scans them and its recall
// matches the same rows built afresh.
void ExpectInt8Edit(bool far_rows) {
  TempDir dir;
  const fs::path path = dir.path() / "int8.db";
  // The added rows come from the same clusters as the built ones.
  const Matrix both = testing::ClusteredMatrix(kRows + 400, kDim, 10, 8);
  Matrix data, fresh;
  data.cols = fresh.cols = kDim;
  data.rows = kRows;
  fresh.rows = 400;
  data.data.assign(both.data.begin(), both.data.begin() + kRows * kDim);
  fresh.data.assign(both.data.begin() + kRows * kDim, both.data.end());
  Build(path, data, Metric::kL2, /*int8=*/true);
  Sq8Params base;  // the ranges the codes must be in after the edit
  {
    sqlite3* db = testing::OpenWithVec0(path);
    auto info = ReadSq8TableInfo(db, kDim, "s1");
    sqlite3_close(db);
    ASSERT_TRUE(info.ok() && info->has_value()) << info.status().ToString();
    EXPECT_EQ((*info)->code_rows, kRows);
    base = (*info)->params;
  }
  if (far_rows) {
    for (int64_t i = 200; i < 240; ++i) {  // added rows past the 200 replacements
      for (int64_t j = 0; j < kDim; ++j) fresh.data[static_cast<size_t>(i * kDim + j)] = fresh.row(i)[j] * 4 + 10;
    }
  }
  Edit e;
  MakeEdit(data, Metric::kL2, 200, 50, 150, &e, fresh);
  std::string why;
  auto edited = EditShardInPlace(path, "s1", e.edit, &why);
  ASSERT_TRUE(edited.ok()) << edited.status().ToString();
  ASSERT_TRUE(edited->has_value()) << why;
  std::vector<int64_t> ids;
  const Matrix all = FinalRows(e, &ids);
  EXPECT_EQ((*edited)->int8_ranges_retrained, far_rows);
  if (far_rows) {
    EXPECT_EQ((*edited)->int8_rows_outside_ranges, 40);
    base = TrainSq8(all.data.data(), all.rows, kDim);  // what a rebuild trains
  } else {
    EXPECT_LE((*edited)->int8_rows_outside_ranges, 16);
  }

  sqlite3* db = testing::OpenWithVec0(path);
  const auto params = testing::QueryRows(db, "SELECT format, rows, hex(mins), hex(scales) FROM shardvec_sq8_params");
  const auto max_rowid = testing::QueryRows(db, "SELECT max(rowid) FROM vec_index_rowids");
  ASSERT_EQ(params.size(), 1u);
  EXPECT_EQ(params[0][0], std::to_string(kSq8FormatByRowid));
  EXPECT_EQ(params[0][1], std::to_string(std::stoll(max_rowid[0][0]) + 1)) << "rows is the rowid extent";
  std::map<int64_t, int64_t> id_of_rowid;
  for (const auto& row : testing::QueryRows(db, "SELECT internal_id, original_id FROM vec_id_map")) {
    auto id = DecodeOriginalId(row[1]);
    ASSERT_TRUE(id.ok());
    id_of_rowid[std::stoll(row[0])] = std::get<int64_t>(*id);
  }
  auto table = LoadVec0Table(db, kDim, Metric::kL2, "s1");
  ASSERT_TRUE(table.ok() && table->has_value()) << table.status().ToString();
  auto codes = LoadSq8Codes(db, **table, "s1");
  ASSERT_TRUE(codes.ok() && codes->has_value()) << codes.status().ToString();
  EXPECT_EQ((*codes)->params().mins, base.mins);
  EXPECT_EQ((*codes)->params().scales, base.scales);
  ASSERT_EQ((*table)->vectors.rows(), (*edited)->rows);
  std::vector<uint8_t> want(static_cast<size_t>(kDim));
  for (int64_t i = 0; i < (*table)->vectors.rows(); ++i) {
    const int64_t rowid = (*table)->rowids[static_cast<size_t>(i)];
    ASSERT_TRUE(id_of_rowid.count(rowid)) << rowid;
    EncodeSq8(base, e.final_rows.at(id_of_rowid[rowid]).data(), want.data());
    ASSERT_EQ(std::vector<uint8_t>((*codes)->row(i), (*codes)->row(i) + kDim), want) << "rowid " << rowid;
  }
  // A deleted row's rowid no row took has zero codes.
  std::set<int64_t> live;
  for (const auto& [rowid, id] : id_of_rowid) live.insert(rowid);
  int64_t holes = 0;
  for (const auto& block : testing::QueryRows(db, "SELECT rowid_lo, rowid_hi, hex(codes) FROM shardvec_sq8_codes")) {
    for (int64_t r = std::stoll(block[0]); r < std::stoll(block[1]); ++r) {
      if (live.count(r)) continue;
      ++holes;
      const std::string hex = block[2].substr(static_cast<size_t>((r - std::stoll(block[0])) * kDim * 2),
                                              static_cast<size_t>(kDim * 2));
      EXPECT_EQ(hex, std::string(static_cast<size_t>(kDim * 2), '0')) << "rowid " << r;
    }
  }
  EXPECT_GT(holes, 0);
  sqlite3_close(db);

  // The reader pre-scans the codes and finds the final rows' nearest neighbours.
  auto kernel = ShardSearcher::Open(path, kDim, Metric::kL2, "s1", 2);
  ASSERT_TRUE(kernel.ok()) << kernel.status().ToString();
  ASSERT_TRUE((*kernel)->uses_int8_codes());
  const Matrix queries = testing::ClusteredMatrix(20, kDim, 10, 9);
  std::vector<const float*> qs;
  for (int64_t q = 0; q < queries.rows; ++q) qs.push_back(queries.row(q));
  for (int64_t i = 0; i < 10; ++i) qs.push_back(fresh.row(i));  // added rows
  // Recall@10 against brute force over every list, of the edited shard and of the final rows built
  // afresh (ranges retrained), whose ids are 0..n-1 in the order of `ids`.
  const fs::path rebuilt_path = dir.path() / "rebuilt.db";
  {
    ShardBuildOptions options{.dim = kDim, .metric = Metric::kL2};
    options.sublists = 25;
    options.int8_codes = true;
    auto builder = ShardBuilder::Create(rebuilt_path, options);
    ASSERT_TRUE(builder.ok()) << builder.status().ToString();
    for (int64_t row = 0; row < all.rows; ++row) ASSERT_TRUE((*builder)->Add(RecordId(ids[static_cast<size_t>(row)]), all.row(row), std::nullopt).ok());
    ASSERT_TRUE((*builder)->Seal().ok());
  }
  auto rebuilt = ShardSearcher::Open(rebuilt_path, kDim, Metric::kL2, "r1", 2);
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.status().ToString();
  const auto recall = [&](ShardSearcher& searcher) {
    std::vector<int32_t> lists_of(searcher.sublists()->ranges.size());
    for (size_t i = 0; i < lists_of.size(); ++i) lists_of[i] = static_cast<int32_t>(i);
    std::vector<std::vector<int32_t>> all_lists(qs.size(), lists_of);
    auto got = searcher.Scan(qs, 10, std::numeric_limits<double>::infinity(), all_lists);
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    int64_t found = 0, wanted = 0;
    for (size_t q = 0; got.ok() && q < qs.size(); ++q) {
      auto resolved = searcher.Resolve((*got)[q]);
      EXPECT_TRUE(resolved.ok());
      std::set<RecordId> answer;
      for (const auto& hit : *resolved) answer.insert(hit.id);
      for (const auto& [score, row] : testing::BruteForce(all, qs[q], Metric::kL2, 10)) {
        found += static_cast<int64_t>(answer.count(RecordId(ids[static_cast<size_t>(row)])));
        ++wanted;
      }
    }
    return static_cast<double>(found) / static_cast<double>(std::max<int64_t>(wanted, 1));
  };
  const double edited_recall = recall(**kernel), rebuilt_recall = recall(**rebuilt);
  EXPECT_GE(edited_recall, rebuilt_recall - 0.02) << "edited " << edited_recall << ", rebuilt " << rebuilt_recall;
}

TEST(ShardEditTest, Int8CodesAreEditedByRowidInTheBuiltRanges) { ExpectInt8Edit(/*far_rows=*/false); }

TEST(ShardEditTest, Int8RangesAreTrainedAnewWhenManyAddedRowsFallOutside) { ExpectInt8Edit(/*far_rows=*/true); }

}  // namespace
}  // namespace shardvec
