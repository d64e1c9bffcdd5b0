// Shard pruning: whether a shard's filter column statistics (the manifest's
// custom["shardvec"]["filter_stats"][db_id], as FilterColumnStats in shard/filter_column_builder.h
// writes them) prove that no row of the shard passes a filter, so a filtered search need not open it.
//
// The answer is conservative: the filter is evaluated over what the statistics allow each column to
// hold (an int or double within [min, max], a bool's true and false counts, a string among the listed
// values, nulls counted), in the filter's three-valued logic, as the set of outcomes some row could
// have. A shard is pruned only when no row can be true. Anything the statistics do not settle (a
// column without statistics, strings beyond the listed ones, damaged statistics) can be anything.
#pragma once

#include <cstdint>

#include <nlohmann/json.hpp>

#include "shard/filter_predicate.h"

namespace shardvec {

// True when `stats` ({column: stats} of one shard of `rows` rows) prove that `filter` passes none of
// its rows. False whenever some row might pass.
bool FilterProvesNoMatch(const FilterPredicate& filter, const nlohmann::json& stats, int64_t rows);

}  // namespace shardvec
