// Sub-lists: a shard's rows clustered at build time into lists, each a contiguous rowid range, so a
// reader scans only the lists nearest a query. Kept in an extra table other readers ignore:
//   shardvec_sublists(list_id INTEGER PRIMARY KEY, rowid_lo INTEGER NOT NULL, rowid_hi INTEGER NOT NULL,
//                     centroid BLOB NOT NULL)
// list i covers rowids [rowid_lo, rowid_hi): the ranges ascending and contiguous from rowid 0, covering
// every row; centroid is float32[dim]. A shard as built holds rowids 0..n-1 and one range per list. An
// update that edits a shard in place (write/delta_shard.h) deletes rows (a range keeps its holes) and
// gives a new row a free rowid of its nearest list's ranges, or appends it after the others, grouped by
// list, each group a further range whose centroid is the list_id (an integer) of the list it extends:
// a reader takes the ranges of one centroid as one list.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "shard/scan_kernel.h"
#include "shard/sq8.h"
#include "shardvec/status.h"
#include "shardvec/types.h"

struct sqlite3;

namespace shardvec {

inline constexpr std::string_view kSublistsTable = "shardvec_sublists";
// sublists_per_shard = 0 (auto) gives a shard of fewer rows than this no sub-lists.
inline constexpr int64_t kAutoSublistMinRows = 256;
// The most sub-lists a shard may ask for.
inline constexpr int64_t kMaxSublistsPerShard = 65536;

// The lists a shard of `rows` rows is split into: `requested` (0 = auto: round(sqrt(rows)) from
// kAutoSublistMinRows rows on, else 1; 1 = none), at most one per row. 1 means no sub-lists.
int64_t SublistCount(int64_t rows, int64_t requested);

// The centroids as a table the scan kernel ranks (rowid i = list i), in `metric`.
ScanTable CentroidTable(const float* centroids, int64_t count, int64_t dim, Metric metric);

// How a shard's rows are split: `order` lists the rows list by list (the rowid each row gets is its
// place here), ranges[i] the rowids of list i, centroids (ranges.size() x dim) their centres.
struct SublistPlan {
  std::vector<int64_t> order;
  std::vector<RowRange> ranges;
  Matrix centroids;
};

// Clusters `rows` vectors (row i at vectors + i * dim) into at most `count` lists with k-means on a
// sample (unit-normalized for cosine, whose lists are then ranked by cosine distance), each row joining
// its nearest centroid in `metric`; empty lists are dropped. Deterministic.
Result<SublistPlan> PlanSublists(const float* vectors, int64_t rows, int64_t dim, Metric metric, int64_t count);

// Creates the table and writes `plan`'s lists into it (inside the caller's transaction).
Status WriteSublistsTable(sqlite3* db, const SublistPlan& plan, std::string_view shard_name);

// A shard's sub-lists as a reader holds them.
struct SubLists {
  std::vector<RowRange> ranges;
  ScanTable centroids;  // in the snapshot's metric
  // The centroids as int8 codes trained on them, which rank a query's lists (Sq8Rank): a quarter of
  // the bytes to read.
  std::optional<Sq8Codes> centroid_codes;
};

// The table as stored: range i and centroid i (float32[dim] at centroids[i * dim]) per row.
struct StoredSublists {
  std::vector<RowRange> ranges;  // rowids
  std::vector<float> centroids;
};

// Reads and checks the table: nullopt when the shard has none. Corruption naming the shard and the
// table when a row is malformed (list ids not 0, 1, ...; ranges not contiguous from 0 or empty; a
// centroid of another size or not finite).
Result<std::optional<StoredSublists>> ReadSublistsTable(sqlite3* db, int64_t dim, std::string_view shard_name);

// The stored lists of each distinct centroid, the centroids in the order they first appear: lists
// whose centroids are the same bytes (an update's further range of a list, say) are one list.
std::vector<std::vector<int64_t>> ListsByCentroid(const StoredSublists& stored, int64_t dim);

// Where a reader puts a shard's rows: `slots` is the slot (vec0 scan order) each row takes, empty
// when rows stay in slot order; `lists` the sub-lists over those rows, each one contiguous range.
struct RowArrangement {
  std::vector<int64_t> slots;
  std::optional<SubLists> lists;
};

// Arranges the rows whose rowids are `slot_rowids` (vec0 scan order): by rowid, then with
// `stored`, list by list, the ranges of one centroid together (lists left without rows dropped). A
// shard as built stays in slot order. Corruption naming the shard when a rowid is negative or lies
// past the lists' ranges.
Result<RowArrangement> ArrangeRows(std::span<const int64_t> slot_rowids, const std::optional<StoredSublists>& stored,
                                   int64_t dim, Metric metric, std::string_view shard_name);

}  // namespace shardvec
