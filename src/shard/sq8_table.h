// The int8 codes' place in a shard file: two extra tables, invisible to sqlite-vec and to other
// readers (the shard stays a plain vec0 shard).
//   shardvec_sq8_params(id INTEGER PRIMARY KEY CHECK (id = 0), format INTEGER NOT NULL,
//                       dim INTEGER NOT NULL, rows INTEGER NOT NULL, mins BLOB NOT NULL, scales BLOB NOT NULL)
//     one row: the per-dimension ranges as float32[dim] each (code c of dimension j stands for
//     mins[j] + scales[j] · c), trained on the shard's rows.
//   shardvec_sq8_codes(rowid_lo INTEGER PRIMARY KEY, rowid_hi INTEGER NOT NULL, codes BLOB NOT NULL)
//     the codes of rowids [rowid_lo, rowid_hi), dim bytes per row in rowid order; the blocks are
//     contiguous from rowid 0 and cover every row, so any rowid range maps to a range of codes.
// Format 1 (a built shard): `rows` is the shard's row count and its rowids are exactly 0..rows-1.
// Format 2 (a shard an update edited in place, write/delta_shard.h): the codes are by rowid over
// [0, rows), `rows` the rowid extent; rowids no row holds (holes deletes left) have zero codes, which
// nothing reads. The ranges are the ones trained when the shard was built, or trained anew on its
// rows by an edit that added many outside them (RetrainSq8Tables).
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

inline constexpr std::string_view kSq8ParamsTable = "shardvec_sq8_params";
inline constexpr std::string_view kSq8CodesTable = "shardvec_sq8_codes";
inline constexpr int64_t kSq8Format = 1;
inline constexpr int64_t kSq8FormatByRowid = 2;
// Rows per shardvec_sq8_codes block.
inline constexpr int64_t kSq8BlockRows = 1024;

// Reads the shard's vectors back from vec0's storage (inside the builder's open transaction),
// trains ranges on them and writes both tables in format 1. Rowids must be 0..n-1, in slot order.
Status WriteSq8Tables(sqlite3* db, int64_t dim, Metric metric, std::string_view shard_name);
// The same over the tables a shard has (inside the editor's transaction): ranges trained anew on its
// rows as they are now, every code rewritten, in format 2 (an edited shard's rows need not be in
// rowid order).
Status RetrainSq8Tables(sqlite3* db, int64_t dim, Metric metric, std::string_view shard_name);

// The shard's codes for `table` (its rows), or nullopt when the shard has no shardvec_sq8_params
// table. Corruption naming the shard and the table when they disagree with the rows: a params row
// missing or for another dim or row count, blobs of the wrong size, a non-finite or negative range,
// code blocks that do not tile rowids 0..rows, or table rows whose rowids are not 0..rows-1 in order.
Result<std::optional<Sq8Codes>> LoadSq8Codes(sqlite3* db, const ScanTable& table, std::string_view shard_name);

// The int8 tables of a shard being edited in place: its trained ranges and where its code blocks
// start (block b covers [block_starts[b], block_starts[b + 1]), the last up to code_rows).
struct Sq8TableInfo {
  Sq8Params params;
  int64_t code_rows = 0;
  std::vector<int64_t> block_starts;
};

// The shard's Sq8TableInfo, or nullopt without a shardvec_sq8_params table; Corruption naming the
// shard and the table when the tables are not as either format describes.
Result<std::optional<Sq8TableInfo>> ReadSq8TableInfo(sqlite3* db, int64_t dim, std::string_view shard_name);

// Inside the editor's transaction: zeroes the codes of the `cleared` rowids (rows removed), then sets
// rowid rowids[i]'s codes to codes[i·dim, (i+1)·dim) — under info.code_rows in its block, past it in new
// blocks after the last (rowids between with zero codes) — and records format 2 with the new extent.
Status EditSq8Codes(sqlite3* db, const Sq8TableInfo& info, int64_t dim, std::span<const int64_t> cleared,
                    std::span<const int64_t> rowids, std::span<const uint8_t> codes, std::string_view shard_name);

}  // namespace shardvec
