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
#include "shard/sq8_table.h"
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

    // The final rows as a matrix, for brute force.
    Matrix all;
    all.cols = kDim;
    std::vector<int64_t> ids;
    for (const auto& [id, v] : e.final_rows) {
      all.data.insert(all.data.end(), v.begin(), v.end());
      ids.push_back(id);
    }
    all.rows = static_cast<int64_t>(ids.size());
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
  for (const Case& c : {Case{"int8 codes", true, 10, 0, 0, "int8"}, Case{"too many deletes", false, 0, 500, 0, "holes"},
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

}  // namespace
}  // namespace shardvec
