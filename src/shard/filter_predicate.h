// A search filter: a CEL expression over a snapshot's filter columns (shard/filter_columns.h),
// parsed once per query and evaluated over a shard's columns a column at a time into a bitmap of the
// rows that pass, never row by row.
//
// What a filter may say: a column compared with a literal (== != < <= > >=, either side; an int
// column with int or double literals, a double column with either, strings bytewise, bools with
// == and !=), `col in [literals]`, `'x' in tags` (a list<string> column), `col.startsWith('p')`,
// `.endsWith`, `.contains` on string columns, `col == null` / `col != null`, a bool column alone,
// `true` / `false`, and any of these combined with &&, || and !. Anything else (arithmetic,
// functions, comparing two columns) is refused with the position.
//
// Nulls (a missing key or JSON null) follow CEL's errors and SQL's unknown: a test on a null value
// is neither true nor false; ! keeps it unknown, `false && x` is false and `true || x` true whatever
// x is, and a row passes only when the whole expression is true. So `lang != 'en'` leaves out rows
// without a lang, and `lang == null || lang != 'en'` keeps them.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "shard/filter_columns.h"
#include "shard/scan_kernel.h"
#include "shardvec/status.h"

namespace shardvec {

struct FilterNode;

class FilterPredicate {
 public:
  // Parses and checks `expr` against the snapshot's declared `columns`. InvalidArgument for a syntax
  // error, an unknown column, a type mismatch or an unsupported form, as
  //   filter: column 'year' is int, so it cannot be compared with a string at column 6
  //    | year == 'x'
  //    | .....^
  static Result<FilterPredicate> Compile(std::string_view expr, std::span<const FilterColumnSpec> columns);

  FilterPredicate(FilterPredicate&&) noexcept;
  FilterPredicate& operator=(FilterPredicate&&) noexcept;
  ~FilterPredicate();

  const std::string& expression() const { return expr_; }
  // The compiled filter as text: the same for filters written differently that compile to the same
  // tree (spaces, parentheses, a literal on either side of a comparison, 2020 and 2020.0), so it
  // can key what is kept of a filter's results across searches.
  const std::string& canonical() const { return canonical_; }
  // The compiled tree (shard/filter_node.h).
  const FilterNode& root() const { return *root_; }

  // The rows of `columns` the filter passes: a bitmap of BitmapWords(columns.rows) words (row r at bit
  // r % 64 of word r / 64). Corruption naming `shard_name` when a column the filter reads is missing
  // from the shard or of another type than the snapshot declares.
  Result<std::vector<uint64_t>> Evaluate(const FilterColumns& columns, std::string_view shard_name) const;

 private:
  FilterPredicate(std::string expr, std::unique_ptr<FilterNode> root);
  std::string expr_;
  std::string canonical_;
  std::unique_ptr<FilterNode> root_;
};

// How many rows of a bitmap are set: all of them, or those in `range`.
int64_t CountRows(std::span<const uint64_t> bitmap);
int64_t CountSet(std::span<const uint64_t> bitmap, RowRange range);
// The set rows, ascending.
std::vector<int64_t> SetRows(std::span<const uint64_t> bitmap);
// Appends the set rows in `range`, ascending.
void AppendSetRows(std::span<const uint64_t> bitmap, RowRange range, std::vector<int64_t>* rows);
// The runs of set rows in `range`, ascending.
std::vector<RowRange> SetRuns(std::span<const uint64_t> bitmap, RowRange range);

}  // namespace shardvec
