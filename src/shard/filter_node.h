// A compiled filter's tree (shard/filter_predicate.h): what FilterPredicate::Compile lowers a CEL
// condition to, shared by the evaluators over a shard's columns and over a shard's statistics.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "shard/filter_columns.h"

namespace shardvec {

enum class FilterOp : uint8_t {
  kAnd, kOr, kNot, kConst,
  kCompare,     // column <cmp> literal
  kInSet,       // column in [literals]
  kHasValue,    // 'x' in list<string> column
  kStartsWith, kEndsWith, kContains,
  kIsNull, kNotNull,
  kBoolColumn,  // a bool column alone
};

enum class FilterCmp : uint8_t { kEq, kNe, kLt, kLe, kGt, kGe };

struct FilterNode {
  FilterOp op = FilterOp::kConst;
  std::vector<std::unique_ptr<FilterNode>> children;
  bool constant = false;  // kConst
  std::string column;
  FilterType type = FilterType::kString;
  FilterCmp cmp = FilterCmp::kEq;
  // The literals: strings for string columns, numbers (exact for every int64 and double) for int and
  // double columns, booleans for bool columns.
  std::vector<std::string> strings;
  std::vector<long double> numbers;
  std::vector<bool> booleans;
};

// For a string test (kCompare, kInSet, kHasValue, kStartsWith, kEndsWith, kContains) over strings
// `sorted` (strictly ascending by bytes): which of them pass, one flag per string.
std::vector<char> PassingStrings(const FilterNode& node, std::span<const std::string> sorted);

// For a bool test (kBoolColumn, kCompare, kInSet): whether a row holding false ([0]) or true ([1]) passes.
void PassingBools(const FilterNode& node, bool when[2]);

}  // namespace shardvec
