#include "shard/sublists.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string_view>
#include <unordered_map>

#include "common/sqlite/sqlite_statement.h"
#include "common/status_macros.h"
#include "routing/kmeans.h"

namespace shardvec {
namespace {

// k-means trains on about this many rows per list (fewer when the shard has fewer), for this many
// Lloyd rounds at most: sub-lists only need to group near rows, not to converge exactly.
constexpr int64_t kSampleRowsPerList = 40;
constexpr int64_t kMinSampleRows = 2048;
constexpr int kSublistIterations = 25;
// Rows assigned to their list per kernel call (a batch scan of the centroids).
constexpr int64_t kAssignBlock = 1024;

void Normalize(float* v, int64_t dim) {
  double sum = 0;
  for (int64_t j = 0; j < dim; ++j) sum += static_cast<double>(v[j]) * v[j];
  if (sum <= 0) return;
  const auto scale = static_cast<float>(1 / std::sqrt(sum));
  for (int64_t j = 0; j < dim; ++j) v[j] *= scale;
}

Status TableError(std::string_view shard_name, std::string_view what) {
  return Status::Corruption(fmt::format("shard {}: table {}: {}", shard_name, kSublistsTable, what));
}

}  // namespace

int64_t SublistCount(int64_t rows, int64_t requested) {
  if (rows <= 0) return 1;
  if (requested == 0) {
    return rows < kAutoSublistMinRows ? 1 : std::llround(std::sqrt(static_cast<double>(rows)));
  }
  return std::min(requested, rows);
}

ScanTable CentroidTable(const float* centroids, int64_t count, int64_t dim, Metric metric) {
  ScanTable table;
  table.metric = metric;
  table.vectors = ScanMatrix(count, dim);
  table.rowids.resize(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    std::memcpy(table.vectors.row(i), centroids + i * dim, static_cast<size_t>(dim) * sizeof(float));
    table.rowids[static_cast<size_t>(i)] = i;
  }
  if (metric == Metric::kCosine) ComputeNorms(&table);
  return table;
}

Result<SublistPlan> PlanSublists(const float* vectors, int64_t rows, int64_t dim, Metric metric, int64_t count) {
  count = std::min(count, rows);
  Matrix sample;
  sample.cols = dim;
  sample.rows = std::min(rows, std::max(count * kSampleRowsPerList, kMinSampleRows));
  sample.data.resize(static_cast<size_t>(sample.rows * dim));
  for (int64_t i = 0; i < sample.rows; ++i) {
    // Evenly spread rows: the input order carries no meaning the lists could depend on.
    const int64_t row = static_cast<int64_t>(static_cast<__int128>(i) * rows / sample.rows);
    std::memcpy(sample.row(i), vectors + row * dim, static_cast<size_t>(dim) * sizeof(float));
    if (metric == Metric::kCosine) Normalize(sample.row(i), dim);
  }
  KMeansOptions options;
  options.max_iter = kSublistIterations;
  options.num_threads = 1;  // shards build in parallel already
  ASSIGN_OR_RETURN(Matrix centroids, TrainKMeans(sample, count, options));
  const ScanTable table = CentroidTable(centroids.data.data(), count, dim, metric);

  // Each row's nearest centroid (a row no centroid scores, as a zero centroid under cosine, joins list 0).
  std::vector<int32_t> list_of(static_cast<size_t>(rows), 0);
  std::vector<const float*> queries;
  std::vector<std::vector<ScanHit>> nearest;
  for (int64_t start = 0; start < rows; start += kAssignBlock) {
    const int64_t n = std::min(kAssignBlock, rows - start);
    queries.clear();
    for (int64_t i = 0; i < n; ++i) queries.push_back(vectors + (start + i) * dim);
    ScanTopK(table, queries, 1, &nearest);
    for (int64_t i = 0; i < n; ++i) {
      const auto& hits = nearest[static_cast<size_t>(i)];
      if (!hits.empty()) list_of[static_cast<size_t>(start + i)] = static_cast<int32_t>(hits.front().rowid);
    }
  }
  // Rows list by list, in input order within a list; empty lists dropped.
  std::vector<int64_t> sizes(static_cast<size_t>(count), 0);
  for (const int32_t list : list_of) ++sizes[static_cast<size_t>(list)];
  std::vector<int64_t> next(static_cast<size_t>(count), 0);
  SublistPlan plan;
  plan.centroids.cols = dim;
  int64_t at = 0;
  for (int64_t list = 0; list < count; ++list) {
    next[static_cast<size_t>(list)] = at;
    if (sizes[static_cast<size_t>(list)] == 0) continue;
    plan.ranges.push_back(RowRange{at, at + sizes[static_cast<size_t>(list)]});
    plan.centroids.data.insert(plan.centroids.data.end(), centroids.row(list), centroids.row(list) + dim);
    at += sizes[static_cast<size_t>(list)];
  }
  plan.centroids.rows = static_cast<int64_t>(plan.ranges.size());
  plan.order.resize(static_cast<size_t>(rows));
  for (int64_t row = 0; row < rows; ++row) {
    plan.order[static_cast<size_t>(next[static_cast<size_t>(list_of[static_cast<size_t>(row)])]++)] = row;
  }
  return plan;
}

Status WriteSublistsTable(sqlite3* db, const SublistPlan& plan, std::string_view shard_name) {
  auto error = [&](std::string_view what) {
    return Status::IOError(fmt::format("shard '{}': {} {}: {}", shard_name, what, kSublistsTable, sqlite3_errmsg(db)));
  };
  const std::string create = fmt::format(
      "CREATE TABLE {}(list_id INTEGER PRIMARY KEY, rowid_lo INTEGER NOT NULL, rowid_hi INTEGER NOT NULL, "
      "centroid BLOB NOT NULL)",
      kSublistsTable);
  if (sqlite3_exec(db, create.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) return error("creating");
  SqliteStatement insert(db, fmt::format("INSERT INTO {} VALUES (?, ?, ?, ?)", kSublistsTable));
  if (!insert.ok()) return error("preparing the insert into");
  const int64_t dim = plan.centroids.cols;
  for (size_t i = 0; i < plan.ranges.size(); ++i) {
    sqlite3_bind_int64(insert.get(), 1, static_cast<int64_t>(i));
    sqlite3_bind_int64(insert.get(), 2, plan.ranges[i].begin);
    sqlite3_bind_int64(insert.get(), 3, plan.ranges[i].end);
    sqlite3_bind_blob(insert.get(), 4, plan.centroids.row(static_cast<int64_t>(i)),
                      static_cast<int>(dim * static_cast<int64_t>(sizeof(float))), SQLITE_STATIC);
    if (insert.Run() != SQLITE_DONE) return error("inserting into");
  }
  return Status::OK();
}

Result<std::optional<StoredSublists>> ReadSublistsTable(sqlite3* db, int64_t dim, std::string_view shard_name) {
  {
    SqliteStatement exists(db, "SELECT type FROM sqlite_master WHERE name = ?");
    if (!exists.ok()) return TableError(shard_name, sqlite3_errmsg(db));
    sqlite3_bind_text(exists.get(), 1, kSublistsTable.data(), static_cast<int>(kSublistsTable.size()), SQLITE_STATIC);
    const int rc = exists.Step();
    if (rc == SQLITE_DONE) return std::optional<StoredSublists>();
    if (rc != SQLITE_ROW) return TableError(shard_name, sqlite3_errmsg(db));
    if (exists.Text(0) != "table") return TableError(shard_name, fmt::format("is a {}, not a table", exists.Text(0)));
  }
  SqliteStatement select(db, fmt::format("SELECT list_id, rowid_lo, rowid_hi, centroid FROM {} ORDER BY list_id",
                                         kSublistsTable));
  if (!select.ok()) return TableError(shard_name, sqlite3_errmsg(db));
  StoredSublists out;
  int rc;
  while ((rc = select.Step()) == SQLITE_ROW) {
    const auto list = static_cast<int64_t>(out.ranges.size());
    for (int c = 0; c < 3; ++c) {
      if (sqlite3_column_type(select.get(), c) != SQLITE_INTEGER) {
        return TableError(shard_name, fmt::format("row {} has a column {} that is not an integer", list, c));
      }
    }
    const int64_t id = select.Int(0), lo = select.Int(1), hi = select.Int(2);
    const int64_t expected_lo = out.ranges.empty() ? 0 : out.ranges.back().end;
    if (id != list) return TableError(shard_name, fmt::format("list_id {} where {} was expected", id, list));
    if (lo != expected_lo || hi <= lo) {
      return TableError(shard_name, fmt::format("list {} holds rowids [{}, {}); expected a non-empty range from {}",
                                                id, lo, hi, expected_lo));
    }
    const size_t at = out.centroids.size();
    if (sqlite3_column_type(select.get(), 3) == SQLITE_INTEGER) {
      // A further range of an earlier list, named by its list_id.
      const int64_t of = select.Int(3);
      if (of < 0 || of >= list) {
        return TableError(shard_name, fmt::format("list {}'s centroid names list {}, not an earlier one", id, of));
      }
      out.centroids.insert(out.centroids.end(), out.centroids.begin() + of * dim, out.centroids.begin() + (of + 1) * dim);
      out.ranges.push_back(RowRange{lo, hi});
      continue;
    }
    const std::string_view blob = select.Blob(3);
    if (sqlite3_column_type(select.get(), 3) != SQLITE_BLOB ||
        blob.size() != static_cast<size_t>(dim) * sizeof(float)) {
      return TableError(shard_name, fmt::format("list {}'s centroid has {} bytes; dim {} needs {}", id, blob.size(),
                                                dim, dim * static_cast<int64_t>(sizeof(float))));
    }
    out.centroids.resize(at + static_cast<size_t>(dim));
    std::memcpy(out.centroids.data() + at, blob.data(), blob.size());
    if (!std::all_of(out.centroids.begin() + static_cast<std::ptrdiff_t>(at), out.centroids.end(),
                     [](float v) { return std::isfinite(v); })) {
      return TableError(shard_name, fmt::format("list {}'s centroid holds a value that is not finite", id));
    }
    out.ranges.push_back(RowRange{lo, hi});
  }
  if (rc != SQLITE_DONE) return TableError(shard_name, sqlite3_errmsg(db));
  return std::optional<StoredSublists>(std::move(out));
}

std::vector<std::vector<int64_t>> ListsByCentroid(const StoredSublists& stored, int64_t dim) {
  const size_t centroid_bytes = static_cast<size_t>(dim) * sizeof(float);
  std::unordered_map<std::string_view, size_t> group_of;
  std::vector<std::vector<int64_t>> groups;
  for (int64_t list = 0; list < static_cast<int64_t>(stored.ranges.size()); ++list) {
    const std::string_view key(reinterpret_cast<const char*>(stored.centroids.data() + list * dim), centroid_bytes);
    const auto [it, added] = group_of.emplace(key, groups.size());
    if (added) groups.emplace_back();
    groups[it->second].push_back(list);
  }
  return groups;
}

Result<RowArrangement> ArrangeRows(std::span<const int64_t> slot_rowids, const std::optional<StoredSublists>& stored,
                                   int64_t dim, Metric metric, std::string_view shard_name) {
  const auto rows = static_cast<int64_t>(slot_rowids.size());
  bool ascending = true;
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t rowid = slot_rowids[static_cast<size_t>(i)];
    if (rowid < 0) return Status::Corruption(fmt::format("shard {}: vec0 holds rowid {}", shard_name, rowid));
    if (i > 0 && rowid <= slot_rowids[static_cast<size_t>(i - 1)]) ascending = false;
  }
  // The slots in rowid order.
  std::vector<int64_t> by_rowid(static_cast<size_t>(rows));
  for (int64_t i = 0; i < rows; ++i) by_rowid[static_cast<size_t>(i)] = i;
  if (!ascending) {
    std::stable_sort(by_rowid.begin(), by_rowid.end(), [&](int64_t a, int64_t b) {
      return slot_rowids[static_cast<size_t>(a)] < slot_rowids[static_cast<size_t>(b)];
    });
  }
  RowArrangement out;
  if (!stored || stored->ranges.empty()) {
    if (!ascending) out.slots = std::move(by_rowid);
    return out;
  }
  const int64_t covered = stored->ranges.back().end;
  if (rows > 0 && slot_rowids[static_cast<size_t>(by_rowid.back())] >= covered) {
    return TableError(shard_name, fmt::format("its lists cover rowids [0, {}) but the shard holds rowid {}", covered,
                                              slot_rowids[static_cast<size_t>(by_rowid.back())]));
  }
  const std::vector<std::vector<int64_t>> groups = ListsByCentroid(*stored, dim);
  // Each group's rows together: its ranges' rows in rowid order.
  std::vector<int64_t> sorted_rowids(static_cast<size_t>(rows));
  for (int64_t i = 0; i < rows; ++i) sorted_rowids[static_cast<size_t>(i)] = slot_rowids[static_cast<size_t>(by_rowid[static_cast<size_t>(i)])];
  auto first_at_or_after = [&](int64_t rowid) {
    return static_cast<int64_t>(std::lower_bound(sorted_rowids.begin(), sorted_rowids.end(), rowid) - sorted_rowids.begin());
  };
  SubLists lists;
  std::vector<float> centroids;
  std::vector<int64_t> slots;
  slots.reserve(static_cast<size_t>(rows));
  for (const std::vector<int64_t>& group : groups) {
    const auto begin = static_cast<int64_t>(slots.size());
    for (const int64_t list : group) {
      const RowRange& range = stored->ranges[static_cast<size_t>(list)];
      for (int64_t i = first_at_or_after(range.begin), end = first_at_or_after(range.end); i < end; ++i) {
        slots.push_back(by_rowid[static_cast<size_t>(i)]);
      }
    }
    const auto end = static_cast<int64_t>(slots.size());
    if (end == begin) continue;
    lists.ranges.push_back(RowRange{begin, end});
    const float* centroid = stored->centroids.data() + group.front() * dim;
    centroids.insert(centroids.end(), centroid, centroid + dim);
  }
  bool identity = true;
  for (int64_t i = 0; i < rows && identity; ++i) identity = slots[static_cast<size_t>(i)] == i;
  if (!identity) out.slots = std::move(slots);
  const auto count = static_cast<int64_t>(lists.ranges.size());
  if (count > 0) {
    lists.centroids = CentroidTable(centroids.data(), count, dim, metric);
    lists.centroid_codes.emplace(QuantizeRows(centroids.data(), count, dim, lists.centroids));
    out.lists = std::move(lists);
  }
  return out;
}

}  // namespace shardvec
