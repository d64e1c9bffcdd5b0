#include "shard/filter_column_builder.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <limits>
#include <numeric>
#include <unordered_map>

#include "common/json_text.h"
#include "common/text_util.h"

namespace shardvec {

// One column as rows arrive: values in the order added, strings coded by first appearance.
struct FilterColumnsBuilder::Pending {
  FilterColumnSpec spec;
  std::vector<uint8_t> valid;
  std::vector<int64_t> ints;
  std::vector<double> doubles;
  std::vector<uint8_t> bools;
  std::unordered_map<std::string, uint32_t> code_of;
  std::vector<std::string> strings;  // by provisional code
  std::vector<uint32_t> codes;
  std::vector<uint64_t> offsets{0};

  uint32_t Code(const std::string& s) {
    const auto [it, added] = code_of.emplace(s, static_cast<uint32_t>(strings.size()));
    if (added) strings.push_back(s);
    return it->second;
  }
};

namespace {

std::string ValueText(const nlohmann::json& value) {
  std::string text = SafeJsonDump(value);
  if (text.size() > 80) text = text.substr(0, 77) + "...";
  return EscapeForDisplay(text);
}

// Why `value` cannot be a value of `type`, or "" when it can (null is always fine).
std::string TypeProblem(FilterType type, const nlohmann::json& value) {
  if (value.is_null()) return "";
  switch (type) {
    case FilterType::kString:
      return value.is_string() ? "" : "is not a string";
    case FilterType::kInt:
      if (value.is_number_integer() && !value.is_number_unsigned()) return "";
      if (value.is_number_unsigned()) {
        return value.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
                   ? ""
                   : "is outside the signed 64-bit range";
      }
      return "is not an integer";
    case FilterType::kDouble:
      return value.is_number() ? "" : "is not a number";
    case FilterType::kBool:
      return value.is_boolean() ? "" : "is not true or false";
    case FilterType::kStringList:
      if (!value.is_array()) return "is not a list of strings";
      for (size_t i = 0; i < value.size(); ++i) {
        if (!value[i].is_string()) return fmt::format("is not a list of strings (element {} is not a string)", i);
      }
      return "";
  }
  return "has an unknown type";
}

// The bits of `flags` (one byte per row), row i taken from flags[order[i]].
std::vector<uint64_t> Bitmap(const std::vector<uint8_t>& flags, std::span<const int64_t> order) {
  std::vector<uint64_t> bits(BitmapWords(static_cast<int64_t>(order.size())), 0);
  for (size_t i = 0; i < order.size(); ++i) {
    if (flags[static_cast<size_t>(order[i])] != 0) bits[i >> 6] |= uint64_t{1} << (i & 63);
  }
  return bits;
}

template <typename T>
std::vector<T> Permuted(const std::vector<T>& values, std::span<const int64_t> order) {
  std::vector<T> out(order.size());
  for (size_t i = 0; i < order.size(); ++i) out[i] = values[static_cast<size_t>(order[i])];
  return out;
}

}  // namespace

FilterColumnsBuilder::FilterColumnsBuilder(std::vector<FilterColumnSpec> specs) {
  for (FilterColumnSpec& spec : specs) {
    columns_.push_back(std::make_unique<Pending>());
    columns_.back()->spec = std::move(spec);
  }
}

FilterColumnsBuilder::~FilterColumnsBuilder() = default;

int64_t FilterColumnsBuilder::rows() const { return rows_; }

Status FilterColumnsBuilder::AddRow(const RecordId& id, const std::optional<std::string>& payload_json) {
  static const nlohmann::json kNull;
  nlohmann::json payload;
  if (payload_json) {
    payload = nlohmann::json::parse(*payload_json, nullptr, /*allow_exceptions=*/false);
    if (!payload.is_object() && !payload.is_null()) {
      return Status::InvalidArgument(fmt::format(
          "record id={}: its payload is not a JSON object, so the filter columns cannot be read from it: '{}'",
          EscapeForDisplay(RecordIdToString(id)), EscapeForDisplay(payload_json->substr(0, 80))));
    }
  }
  std::vector<const nlohmann::json*> values;
  for (const auto& column : columns_) {
    const nlohmann::json* value = &kNull;
    if (payload.is_object()) {
      const auto it = payload.find(column->spec.name);
      if (it != payload.end()) value = &*it;
    }
    if (const std::string problem = TypeProblem(column->spec.type, *value); !problem.empty()) {
      return Status::InvalidArgument(fmt::format("record id={}: filter column '{}' ({}): value {} {}",
                                                 EscapeForDisplay(RecordIdToString(id)), column->spec.name,
                                                 FilterTypeName(column->spec.type), ValueText(*value), problem));
    }
    values.push_back(value);
  }
  for (size_t c = 0; c < columns_.size(); ++c) {
    Pending& p = *columns_[c];
    const nlohmann::json& v = *values[c];
    const bool has = !v.is_null();
    p.valid.push_back(has ? 1 : 0);
    switch (p.spec.type) {
      case FilterType::kString:
        p.codes.push_back(has ? p.Code(v.get_ref<const std::string&>()) : 0);
        break;
      case FilterType::kInt:
        p.ints.push_back(has ? v.get<int64_t>() : 0);
        break;
      case FilterType::kDouble:
        p.doubles.push_back(has ? v.get<double>() : 0.0);
        break;
      case FilterType::kBool:
        p.bools.push_back(has && v.get<bool>() ? 1 : 0);
        break;
      case FilterType::kStringList:
        if (has) {
          for (const nlohmann::json& s : v) p.codes.push_back(p.Code(s.get_ref<const std::string&>()));
        }
        p.offsets.push_back(p.codes.size());
        break;
    }
  }
  ++rows_;
  return Status::OK();
}

FilterColumns FilterColumnsBuilder::Finish(std::span<const int64_t> order) const {
  std::vector<int64_t> identity;
  if (order.empty()) {
    identity.resize(static_cast<size_t>(rows_));
    std::iota(identity.begin(), identity.end(), int64_t{0});
    order = identity;
  }
  FilterColumns out;
  out.rows = rows_;
  for (const auto& pending : columns_) {
    const Pending& p = *pending;
    FilterColumn c;
    c.name = p.spec.name;
    c.type = p.spec.type;
    c.rows = rows_;
    c.valid = Bitmap(p.valid, order);
    c.null_count = rows_ - std::count(p.valid.begin(), p.valid.end(), uint8_t{1});
    if (p.spec.type == FilterType::kInt) c.ints = Permuted(p.ints, order);
    if (p.spec.type == FilterType::kDouble) c.doubles = Permuted(p.doubles, order);
    if (p.spec.type == FilterType::kBool) c.bools = Bitmap(p.bools, order);
    if (p.spec.type == FilterType::kString || p.spec.type == FilterType::kStringList) {
      // The dictionary sorted, and each provisional code mapped to its place in it.
      std::vector<uint32_t> sorted(p.strings.size());
      std::iota(sorted.begin(), sorted.end(), uint32_t{0});
      std::sort(sorted.begin(), sorted.end(), [&](uint32_t a, uint32_t b) { return p.strings[a] < p.strings[b]; });
      std::vector<uint32_t> remap(sorted.size());
      for (size_t i = 0; i < sorted.size(); ++i) {
        remap[sorted[i]] = static_cast<uint32_t>(i);
        c.dictionary.push_back(p.strings[sorted[i]]);
      }
      if (p.spec.type == FilterType::kString) {
        c.codes.reserve(order.size());
        for (const int64_t row : order) {
          const auto r = static_cast<size_t>(row);
          c.codes.push_back(p.valid[r] != 0 ? remap[p.codes[r]] : 0);
        }
      } else {
        c.offsets.reserve(order.size() + 1);
        c.offsets.push_back(0);
        c.codes.reserve(p.codes.size());
        for (const int64_t row : order) {
          const auto r = static_cast<size_t>(row);
          for (uint64_t e = p.offsets[r]; e < p.offsets[r + 1]; ++e) c.codes.push_back(remap[p.codes[e]]);
          c.offsets.push_back(c.codes.size());
        }
      }
    }
    out.columns.push_back(std::move(c));
  }
  return out;
}

namespace {

// "distinct" and "values" (or "many") of a dictionary.
void DictionaryStats(const FilterColumn& c, nlohmann::json* stats) {
  (*stats)["distinct"] = c.dictionary.size();
  size_t bytes = 0;
  for (const std::string& s : c.dictionary) bytes += s.size();
  const bool listable = c.dictionary.size() <= kFilterStatsMaxValues && bytes <= kFilterStatsMaxValueBytes;
  if (listable) {
    (*stats)["values"] = c.dictionary;
  } else {
    (*stats)["many"] = true;
  }
}

template <typename T>
void MinMax(const FilterColumn& c, const std::vector<T>& values, nlohmann::json* stats) {
  std::optional<T> lo, hi;
  for (int64_t r = 0; r < c.rows; ++r) {
    if (!c.IsValid(r)) continue;
    const T v = values[static_cast<size_t>(r)];
    if (!lo || v < *lo) lo = v;
    if (!hi || v > *hi) hi = v;
  }
  if (lo) {
    (*stats)["min"] = *lo;
    (*stats)["max"] = *hi;
  }
}

}  // namespace

nlohmann::json FilterColumnStats(const FilterColumns& columns) {
  nlohmann::json out = nlohmann::json::object();
  for (const FilterColumn& c : columns.columns) {
    nlohmann::json stats = {{"nulls", c.null_count}};
    switch (c.type) {
      case FilterType::kInt:
        MinMax(c, c.ints, &stats);
        break;
      case FilterType::kDouble:
        MinMax(c, c.doubles, &stats);
        break;
      case FilterType::kBool: {
        int64_t trues = 0;
        for (const uint64_t word : c.bools) trues += std::popcount(word);
        stats["true"] = trues;
        stats["false"] = c.rows - c.null_count - trues;
        break;
      }
      case FilterType::kString:
        DictionaryStats(c, &stats);
        break;
      case FilterType::kStringList: {
        int64_t empty = 0;
        for (int64_t r = 0; r < c.rows; ++r) {
          if (c.IsValid(r) && c.offsets[static_cast<size_t>(r)] == c.offsets[static_cast<size_t>(r) + 1]) ++empty;
        }
        stats["empty"] = empty;
        DictionaryStats(c, &stats);
        break;
      }
    }
    out[c.name] = std::move(stats);
  }
  return out;
}

}  // namespace shardvec
