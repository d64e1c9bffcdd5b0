// Filter columns' place in a shard file: one extra table, invisible to sqlite-vec and to other
// readers (the shard stays a plain vec0 shard).
//   shardvec_filter_columns(name TEXT PRIMARY KEY, type TEXT NOT NULL, format INTEGER NOT NULL,
//                           rows INTEGER NOT NULL, data BLOB NOT NULL)
// one row per column: its name and type (filter_columns.h), the shard's row count, and `data`, the
// column by rowid in encoding kFilterColumnsFormat (little-endian throughout):
//   validity   u64[ceil(rows / 64)]   bit r % 64 of word r / 64 set: rowid r has a value
//   int        i64[rows]              (0 where null)
//   double     f64[rows]              finite (0 where null)
//   bool       u64[ceil(rows / 64)]   bit set: true (0 where null)
//   string     u64 count, u64 ends[count], the strings' bytes (string i is bytes [ends[i-1], ends[i])),
//              strictly ascending UTF-8; then u32 codes[rows] (0 where null)
//   list<string>  the same dictionary; then u64 offsets[rows + 1] (from 0, ascending; row r's
//              elements are codes[offsets[r], offsets[r + 1]), none where null) and u32 codes[offsets[rows]]
// and nothing after.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "shard/filter_columns.h"
#include "shard/scan_kernel.h"
#include "shardvec/status.h"

struct sqlite3;

namespace shardvec {

inline constexpr std::string_view kFilterColumnsTable = "shardvec_filter_columns";
inline constexpr int64_t kFilterColumnsFormat = 1;

// `column`'s data blob.
std::string EncodeFilterColumn(const FilterColumn& column);
// A data blob back as the column `name` of `type` over `rows` rows: Corruption naming `shard_name`,
// the table and the column when the blob is not exactly such an encoding (sizes, ordering, codes,
// offsets, bits past the rows, non-zero null slots, non-finite doubles, text that is not UTF-8).
Result<FilterColumn> DecodeFilterColumn(std::string name, FilterType type, int64_t rows, std::string_view data,
                                        std::string_view shard_name);

// Creates the table and writes every column into it (inside the caller's transaction).
Status WriteFilterColumnsTable(sqlite3* db, const FilterColumns& columns, std::string_view shard_name);

// The shard's filter columns over `table`'s rows (row i of a column is table row i), or nullopt
// when it has no such table. Corruption naming the shard and the table when the table disagrees
// with them: a name or type that is not a filter column's, another format, a row count other than
// the shard's (with rows 0..n-1 in rowid order; else fewer than its largest rowid needs), a blob
// DecodeFilterColumn refuses.
Result<std::optional<FilterColumns>> LoadFilterColumns(sqlite3* db, const ScanTable& table,
                                                       std::string_view shard_name);

}  // namespace shardvec
