#include "shard/filter_columns.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/text_util.h"
#include "routing/cel/lexer.h"

namespace shardvec {
namespace {

constexpr std::pair<FilterType, std::string_view> kTypeNames[] = {
    {FilterType::kString, "string"}, {FilterType::kInt, "int"},
    {FilterType::kDouble, "double"}, {FilterType::kBool, "bool"},
    {FilterType::kStringList, "list<string>"},
};

// A name a CEL expression can use as a variable: exactly one identifier token.
bool IsCelIdentifier(std::string_view name) {
  std::vector<cel::Token> tokens;
  cel::LexError error;
  return cel::Lex(name, tokens, error) && tokens.size() == 2 && tokens[0].kind == cel::Tok::kIdent &&
         tokens[0].text == name;
}

}  // namespace

std::string_view FilterTypeName(FilterType type) {
  for (const auto& [t, name] : kTypeNames) {
    if (t == type) return name;
  }
  return "?";
}

std::optional<FilterType> FilterTypeFromName(std::string_view name) {
  for (const auto& [t, text] : kTypeNames) {
    if (text == name) return t;
  }
  return std::nullopt;
}

Result<std::vector<FilterColumnSpec>> ParseFilterColumnSpecs(const std::map<std::string, std::string>& columns,
                                                             std::string_view field) {
  if (columns.size() > kMaxFilterColumns) {
    return Status::InvalidArgument(
        fmt::format("{} declares {} columns; at most {} are allowed", field, columns.size(), kMaxFilterColumns));
  }
  std::vector<FilterColumnSpec> specs;
  for (const auto& [name, type_name] : columns) {
    if (name.size() > kMaxFilterColumnNameBytes || !IsCelIdentifier(name)) {
      return Status::InvalidArgument(fmt::format(
          "{} name '{}' is not allowed: a filter column is named like a CEL variable (letters, digits and '_', "
          "not starting with a digit, not a CEL keyword, at most {} bytes)",
          field, EscapeForDisplay(name), kMaxFilterColumnNameBytes));
    }
    const std::optional<FilterType> type = FilterTypeFromName(type_name);
    if (!type) {
      return Status::InvalidArgument(
          fmt::format("{}['{}'] has type '{}'; expected one of string, int, double, bool, list<string>", field,
                      name, EscapeForDisplay(type_name)));
    }
    specs.push_back({name, *type});
  }
  return specs;
}

std::optional<uint32_t> FilterColumn::CodeOf(std::string_view value) const {
  const auto it = std::lower_bound(dictionary.begin(), dictionary.end(), value,
                                   [](const std::string& a, std::string_view b) { return std::string_view(a) < b; });
  if (it == dictionary.end() || *it != value) return std::nullopt;
  return static_cast<uint32_t>(it - dictionary.begin());
}

int64_t FilterColumn::bytes() const {
  size_t total = (valid.size() + bools.size() + offsets.size()) * sizeof(uint64_t) + ints.size() * sizeof(int64_t) +
                 doubles.size() * sizeof(double) + codes.size() * sizeof(uint32_t);
  for (const std::string& s : dictionary) total += sizeof(std::string) + s.capacity();
  return static_cast<int64_t>(total);
}

const FilterColumn* FilterColumns::Find(std::string_view name) const {
  for (const FilterColumn& c : columns) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

int64_t FilterColumns::bytes() const {
  int64_t total = 0;
  for (const FilterColumn& c : columns) total += c.bytes();
  return total;
}

}  // namespace shardvec
