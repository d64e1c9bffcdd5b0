// Filter columns: payload keys declared at write time (WriteConfig::filter_columns) and kept typed
// and columnar in each shard, rowid-aligned with vec0 (row i of a column is rowid i), so a predicate
// can be evaluated over whole columns in batches rather than row by row through JSON.
//
// The in-memory form (FilterColumn) is what a reader holds once a shard is open: a validity bitmap
// and the values of one type, strings as a sorted dictionary plus a code per row (so == and `in` are
// one code comparison, and < on strings is < on codes).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shardvec/status.h"

namespace shardvec {

enum class FilterType : uint8_t {
  kString,      // "string"
  kInt,         // "int": signed 64-bit
  kDouble,      // "double": float64 (JSON integers are taken too)
  kBool,        // "bool": true / false only
  kStringList,  // "list<string>"
};

// "string", "int", "double", "bool", "list<string>".
std::string_view FilterTypeName(FilterType type);
std::optional<FilterType> FilterTypeFromName(std::string_view name);

struct FilterColumnSpec {
  std::string name;
  FilterType type = FilterType::kString;
  bool operator==(const FilterColumnSpec&) const = default;
};

// The most filter columns a snapshot may declare, and the longest name.
inline constexpr size_t kMaxFilterColumns = 64;
inline constexpr size_t kMaxFilterColumnNameBytes = 64;

// Checks declarations name -> type and returns them in name order. A name must be a CEL identifier
// (letters, digits and '_', not starting with a digit, no CEL keyword) of at most
// kMaxFilterColumnNameBytes bytes, so a filter expression can name it; a type one of the names
// above. InvalidArgument naming `field` and the value.
Result<std::vector<FilterColumnSpec>> ParseFilterColumnSpecs(const std::map<std::string, std::string>& columns,
                                                             std::string_view field);

// One column of one shard, for rows 0..rows-1. Bitmaps hold row r at bit r % 64 of word r / 64;
// bits past `rows` are 0. Null rows hold 0 (false, code 0, an empty list) in the value arrays.
struct FilterColumn {
  std::string name;
  FilterType type = FilterType::kString;
  int64_t rows = 0;
  int64_t null_count = 0;
  std::vector<uint64_t> valid = {};        // bit set: the row has a value
  std::vector<int64_t> ints = {};          // kInt: one per row
  std::vector<double> doubles = {};        // kDouble: one per row, finite
  std::vector<uint64_t> bools = {};        // kBool: bit set = true
  // kString, kStringList: the distinct strings, strictly ascending by bytes (UTF-8).
  std::vector<std::string> dictionary = {};
  // kString: one code (index into dictionary) per row; kStringList: every row's elements in order.
  std::vector<uint32_t> codes = {};
  // kStringList: rows + 1 entries from 0; row r's elements are codes[offsets[r], offsets[r + 1]).
  std::vector<uint64_t> offsets = {};

  bool IsValid(int64_t row) const { return (valid[static_cast<size_t>(row >> 6)] >> (row & 63)) & 1; }
  // kBool: row's value (false where null).
  bool BoolAt(int64_t row) const { return (bools[static_cast<size_t>(row >> 6)] >> (row & 63)) & 1; }
  // kString, kStringList: the code of `value`, or nullopt when no row holds it.
  std::optional<uint32_t> CodeOf(std::string_view value) const;
  // Bytes held in memory.
  int64_t bytes() const;
};

// A shard's filter columns, in name order.
struct FilterColumns {
  int64_t rows = 0;
  std::vector<FilterColumn> columns = {};

  // The column named `name`, or null.
  const FilterColumn* Find(std::string_view name) const;
  int64_t bytes() const;
};

// Words of a bitmap over `rows` rows.
inline size_t BitmapWords(int64_t rows) { return static_cast<size_t>((rows + 63) / 64); }

}  // namespace shardvec
