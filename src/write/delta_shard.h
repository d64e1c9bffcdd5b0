// An update's edit of one shard in place: a private copy of the base shard file gets its removed rows
// deleted and its new rows appended, through SQLite and vec0 themselves, instead of the whole shard
// being rebuilt. The vectors already there are never rewritten, so the cost is the rows changed plus
// one file copy, not a rebuild.
//
// What stays true of the shard (docs/snapshot-format.md): plain SQLite + vec0 read exactly its live
// rows; its sub-lists keep their centroids, each new row joining its nearest list through a further
// range after the others with that list's centroid (shard/sublists.h); filter columns are rewritten by
// rowid, deleted rowids null; int8 codes are kept by rowid (shard/sq8_table.h, format 2), an added
// row's in the ranges the shard was built with, unless more than kMaxOutOfRangeFraction of its rows
// are added outside those ranges: then the ranges are trained anew on the final rows and every code
// rewritten, as a rebuild would. A shard is rebuilt whole instead (EditShardInPlace returns nullopt,
// having written nothing) when editing would not keep it as good as a rebuild: a vec0 layout we do
// not know, no sub-lists where a rebuild would make them, no rows left, or more than
// kMaxEditedFraction of its rows deleted or appended since it was built (a rebuild compacts the holes
// and retrains the lists).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "shard/filter_columns.h"
#include "shardvec/status.h"
#include "shardvec/types.h"

namespace shardvec {

// Past this share of a shard's live rows, in holes left by deletes or in rows appended to its lists
// since the shard was built, an update rebuilds it whole.
inline constexpr double kMaxEditedFraction = 0.25;
// Past this share of a shard's live rows added by one update outside the ranges its int8 codes were
// trained on (Sq8WithinRanges), the edit trains the ranges anew and rewrites every code.
inline constexpr double kMaxOutOfRangeFraction = 0.01;

struct ShardEdit {
  int64_t dim = 0;
  Metric metric = Metric::kL2;
  std::vector<FilterColumnSpec> filter_columns;
  int64_t sublists = 0;  // the write config's sublists_per_shard
  // The ids the update changes (their id-map text -> upserted), and of those the ones the base's id
  // index places in this shard (each must be found here, else the id map is decoded row by row).
  const std::unordered_map<std::string, bool>* changed = nullptr;
  std::vector<std::string> expected_here;
  // The rows added.
  struct Row {
    RecordId id;
    const float* vector = nullptr;
    const std::optional<std::string>* payload = nullptr;  // canonical JSON text, or none
  };
  std::vector<Row> adds;
  // Called before each added row (the write rate limiter).
  std::function<Status()> before_row;
  // With a routing centroid (CLUSTER), the outcome samples the base rows' distance to it.
  const float* routing_centroid = nullptr;
};

struct ShardEditOutcome {
  int64_t base_rows = 0;
  int64_t rows = 0;      // live rows after the edit
  int64_t base_sublists = 0;  // lists holding rows before the edit (0: none)
  int64_t sublists = 0;       // lists holding rows after the edit (0: none)
  int64_t replaced = 0;
  int64_t deleted = 0;
  std::vector<std::string> removed_ids;  // id-map texts of the rows removed (replaced or deleted)
  std::vector<std::string> deleted_ids;  // of those, the deleted ones
  std::string id_type;                   // "int", "str" or "mixed"
  std::string filter_stats_json;         // as ShardBuilder::filter_stats_json
  // A sample of the base rows (the first vec0 chunk's): their routing distances' sum and count.
  double base_distance_sum = 0;
  int64_t base_distance_rows = 0;
  // With int8 codes: the added rows outside the codes' ranges, and whether the ranges were trained
  // anew (every code rewritten) because of them.
  int64_t int8_rows_outside_ranges = 0;
  bool int8_ranges_retrained = false;
};

// Edits `file` (a private copy of a base shard, named `name` in errors), or returns nullopt and
// leaves it untouched when the shard should be rebuilt whole (the reason in *why).
Result<std::optional<ShardEditOutcome>> EditShardInPlace(const std::filesystem::path& file, std::string_view name,
                                                         const ShardEdit& edit, std::string* why);

}  // namespace shardvec
