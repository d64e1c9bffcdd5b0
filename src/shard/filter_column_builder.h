// Filter columns at write time: each row's values taken from its payload (a JSON object) as rows are
// added, the columns put in the shard's final rowid order, and the per-shard statistics a manifest
// records for pruning.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "shard/filter_columns.h"
#include "shardvec/status.h"
#include "shardvec/types.h"

namespace shardvec {

class FilterColumnsBuilder {
 public:
  explicit FilterColumnsBuilder(std::vector<FilterColumnSpec> specs);
  ~FilterColumnsBuilder();
  FilterColumnsBuilder(const FilterColumnsBuilder&) = delete;
  FilterColumnsBuilder& operator=(const FilterColumnsBuilder&) = delete;

  // Appends one row: each column's value is the payload's key of the column's name; a missing key,
  // a JSON null or no payload is null. InvalidArgument naming the record `id`, the column and the
  // value when the value has another type (an int column takes JSON integers in the signed 64-bit
  // range only, a double column any JSON number, a bool column true/false, a list<string> column an
  // array of strings) or the payload is not a JSON object; the row is then not added.
  Status AddRow(const RecordId& id, const std::optional<std::string>& payload_json);
  int64_t rows() const;

  // The columns, row i holding the values of the row added order[i]-th (as added when `order` is
  // empty; otherwise a permutation of 0..rows-1). Strings get their sorted dictionary here.
  FilterColumns Finish(std::span<const int64_t> order) const;

 private:
  struct Pending;
  std::vector<std::unique_ptr<Pending>> columns_;
  int64_t rows_ = 0;
};

// The most distinct strings a column's statistics list (more: "many"), and their most bytes in all
// (so a manifest stays small however long the strings are).
inline constexpr size_t kFilterStatsMaxValues = 64;
inline constexpr size_t kFilterStatsMaxValueBytes = 2048;

// Statistics of each column, {name: stats}, for the manifest: every column has "nulls" (rows without
// a value); int and double columns "min" and "max" over their values (absent when all are null);
// bool columns "true" and "false" (row counts); string and list<string> columns "distinct" (distinct
// strings, over every element for lists) and either "values" (those strings, ascending, when at most
// kFilterStatsMaxValues of at most kFilterStatsMaxValueBytes in all) or "many": true; list<string>
// columns also "empty" (rows holding an empty list).
nlohmann::json FilterColumnStats(const FilterColumns& columns);

}  // namespace shardvec
