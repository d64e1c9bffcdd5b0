#include "shard/filter_prune.h"

#include <algorithm>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "shard/filter_node.h"

namespace shardvec {
namespace {

// The outcomes some row of the shard could have: true, false, unknown (a null was tested).
struct Outcomes {
  bool t = true, f = true, u = true;
};

constexpr Outcomes kAnything{};

// A count in `stats`, when it is one in 0..rows.
std::optional<int64_t> Count(const nlohmann::json& stats, const char* key, int64_t rows) {
  const auto it = stats.find(key);
  if (it == stats.end() || !it->is_number_integer()) return std::nullopt;
  const int64_t n = it->get<int64_t>();
  if (n < 0 || n > rows) return std::nullopt;
  return n;
}

std::optional<long double> Number(const nlohmann::json& stats, const char* key) {
  const auto it = stats.find(key);
  if (it == stats.end() || !it->is_number()) return std::nullopt;
  if (it->is_number_unsigned()) return static_cast<long double>(it->get<uint64_t>());
  if (it->is_number_integer()) return static_cast<long double>(it->get<int64_t>());
  return static_cast<long double>(it->get<double>());
}

// The listed strings, when they are strings in strictly ascending order.
std::optional<std::vector<std::string>> Values(const nlohmann::json& stats) {
  const auto it = stats.find("values");
  if (it == stats.end() || !it->is_array()) return std::nullopt;
  std::vector<std::string> values;
  for (const nlohmann::json& v : *it) {
    if (!v.is_string()) return std::nullopt;
    values.push_back(v.get<std::string>());
    if (values.size() > 1 && !(values[values.size() - 2] < values.back())) return std::nullopt;
  }
  return values;
}

// Whether some value of [lo, hi] makes `value cmp lit` true, and whether some makes it false.
std::pair<bool, bool> RangeOutcomes(long double lo, long double hi, FilterCmp cmp, long double lit) {
  switch (cmp) {
    case FilterCmp::kEq: return {lo <= lit && lit <= hi, !(lo == lit && hi == lit)};
    case FilterCmp::kNe: return {!(lo == lit && hi == lit), lo <= lit && lit <= hi};
    case FilterCmp::kLt: return {lo < lit, hi >= lit};
    case FilterCmp::kLe: return {lo <= lit, hi > lit};
    case FilterCmp::kGt: return {hi > lit, lo <= lit};
    case FilterCmp::kGe: return {hi >= lit, lo < lit};
  }
  return {true, true};
}

// Whether some row with a value could pass the leaf `node`, and whether some could fail it
// ({true, true} when the statistics do not say). `valued`: the rows with a value (> 0).
std::pair<bool, bool> ValueOutcomes(const FilterNode& node, const nlohmann::json& stats, int64_t rows,
                                    int64_t valued) {
  switch (node.type) {
    case FilterType::kBool: {
      const std::optional<int64_t> trues = Count(stats, "true", rows), falses = Count(stats, "false", rows);
      if (!trues || !falses || *trues + *falses != valued) return {true, true};
      bool when[2];
      PassingBools(node, when);
      return {(*falses > 0 && when[0]) || (*trues > 0 && when[1]), (*falses > 0 && !when[0]) || (*trues > 0 && !when[1])};
    }
    case FilterType::kInt:
    case FilterType::kDouble: {
      const std::optional<long double> lo = Number(stats, "min"), hi = Number(stats, "max");
      if (!lo || !hi || *lo > *hi) return {true, true};
      if (node.op == FilterOp::kCompare) return RangeOutcomes(*lo, *hi, node.cmp, node.numbers[0]);
      if (node.op == FilterOp::kInSet) {
        bool t = false;
        for (const long double n : node.numbers) t |= *lo <= n && n <= *hi;
        const bool single = *lo == *hi && std::find(node.numbers.begin(), node.numbers.end(), *lo) != node.numbers.end();
        return {t, !single};
      }
      return {true, true};
    }
    case FilterType::kString: {
      const std::optional<std::vector<std::string>> values = Values(stats);
      if (!values || values->empty()) return {true, true};
      const std::vector<char> pass = PassingStrings(node, *values);
      return {std::count(pass.begin(), pass.end(), 1) > 0, std::count(pass.begin(), pass.end(), 0) > 0};
    }
    case FilterType::kStringList: {
      // 'x' in tags: a row passes when its list holds x; a row without the value fails it.
      const std::optional<int64_t> empty = Count(stats, "empty", rows);
      const bool some_elements = !empty || *empty < valued;
      const std::optional<std::vector<std::string>> values = Values(stats);
      if (!values || node.op != FilterOp::kHasValue) return {some_elements, true};
      const std::vector<char> pass = PassingStrings(node, *values);
      return {some_elements && std::count(pass.begin(), pass.end(), 1) > 0, true};
    }
  }
  return {true, true};
}

Outcomes Evaluate(const FilterNode& node, const nlohmann::json& stats, int64_t rows) {
  switch (node.op) {
    case FilterOp::kConst:
      return Outcomes{node.constant, !node.constant, false};
    case FilterOp::kNot: {
      Outcomes inner = Evaluate(*node.children[0], stats, rows);
      std::swap(inner.t, inner.f);
      return inner;
    }
    case FilterOp::kAnd:
    case FilterOp::kOr: {
      // Each row's outcome combines one possible outcome of each side (the sides' rows may differ,
      // so every pairing is allowed: an over-approximation).
      const Outcomes a = Evaluate(*node.children[0], stats, rows);
      const Outcomes b = Evaluate(*node.children[1], stats, rows);
      if (node.op == FilterOp::kAnd) {
        return Outcomes{a.t && b.t, a.f || b.f, (a.u && (b.t || b.u)) || (b.u && (a.t || a.u))};
      }
      return Outcomes{a.t || b.t, a.f && b.f, (a.u && (b.f || b.u)) || (b.u && (a.f || a.u))};
    }
    default: break;
  }
  const auto it = stats.find(node.column);
  if (it == stats.end() || !it->is_object()) return kAnything;
  const std::optional<int64_t> nulls = Count(*it, "nulls", rows);
  if (!nulls) return kAnything;
  const int64_t valued = rows - *nulls;
  if (node.op == FilterOp::kIsNull) return Outcomes{*nulls > 0, valued > 0, false};
  if (node.op == FilterOp::kNotNull) return Outcomes{valued > 0, *nulls > 0, false};
  Outcomes out{false, false, *nulls > 0};
  if (valued > 0) std::tie(out.t, out.f) = ValueOutcomes(node, *it, rows, valued);
  return out;
}

}  // namespace

bool FilterProvesNoMatch(const FilterPredicate& filter, const nlohmann::json& stats, int64_t rows) {
  if (rows <= 0) return true;
  if (!stats.is_object()) return false;
  return !Evaluate(filter.root(), stats, rows).t;
}

}  // namespace shardvec
