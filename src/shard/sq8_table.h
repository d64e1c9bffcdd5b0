// The int8 codes' place in a shard file: two extra tables, invisible to sqlite-vec and to other
// readers (the shard stays a plain vec0 shard).
//   shardvec_sq8_params(id INTEGER PRIMARY KEY CHECK (id = 0), format INTEGER NOT NULL,
//                       dim INTEGER NOT NULL, rows INTEGER NOT NULL, mins BLOB NOT NULL, scales BLOB NOT NULL)
//     one row: the per-dimension ranges as float32[dim] each (code c of dimension j stands for
//     mins[j] + scales[j] · c), trained on the shard's rows.
//   shardvec_sq8_codes(rowid_lo INTEGER PRIMARY KEY, rowid_hi INTEGER NOT NULL, codes BLOB NOT NULL)
//     the codes of rowids [rowid_lo, rowid_hi), dim bytes per row in rowid order; the blocks are
//     contiguous from rowid 0 and cover every row, so any rowid range maps to a range of codes.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "shard/scan_kernel.h"
#include "shard/sq8.h"
#include "shardvec/status.h"
#include "shardvec/types.h"

struct sqlite3;

namespace shardvec {

inline constexpr std::string_view kSq8ParamsTable = "shardvec_sq8_params";
inline constexpr std::string_view kSq8CodesTable = "shardvec_sq8_codes";
inline constexpr int64_t kSq8Format = 1;
// Rows per shardvec_sq8_codes block.
inline constexpr int64_t kSq8BlockRows = 1024;

// Reads the shard's vectors back from vec0's storage (inside the builder's open transaction),
// trains ranges on them and writes both tables. Rowids must be 0..n-1.
Status WriteSq8Tables(sqlite3* db, int64_t dim, Metric metric, std::string_view shard_name);

// The shard's codes for `table` (its rows), or nullopt when the shard has no shardvec_sq8_params
// table. Corruption naming the shard and the table when they disagree with the rows: a params row
// missing or for another dim or row count, blobs of the wrong size, a non-finite or negative range,
// code blocks that do not tile rowids 0..rows, or table rows whose rowids are not 0..rows-1 in order.
Result<std::optional<Sq8Codes>> LoadSq8Codes(sqlite3* db, const ScanTable& table, std::string_view shard_name);

}  // namespace shardvec
