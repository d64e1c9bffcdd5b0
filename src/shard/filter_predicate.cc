#include "shard/filter_predicate.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>

#include "common/status_macros.h"
#include "routing/cel/parser.h"
#include "shard/filter_node.h"

namespace shardvec {

namespace {

using cel::Node;

// "filter: <what> at column N" with the expression and a caret, as CEL compile errors read.
// A CEL compile error says "cel_expr:"; a filter's says "filter:".
Status Renamed(const Status& st) {
  std::string_view msg = st.message();
  if (msg.starts_with("cel_expr: ")) msg.remove_prefix(10);
  return Status::InvalidArgument("filter: " + std::string(msg));
}

Status FilterError(std::string_view expr, uint32_t pos, std::string_view what, std::string_view hint = {}) {
  return Renamed(cel::FormatCompileError(expr, pos, what, hint));
}

std::optional<FilterCmp> CmpOf(std::string_view name) {
  if (name == "_==_") return FilterCmp::kEq;
  if (name == "_!=_") return FilterCmp::kNe;
  if (name == "_<_") return FilterCmp::kLt;
  if (name == "_<=_") return FilterCmp::kLe;
  if (name == "_>_") return FilterCmp::kGt;
  if (name == "_>=_") return FilterCmp::kGe;
  return std::nullopt;
}

// a <cmp> b read as b <flipped> a.
FilterCmp Flipped(FilterCmp c) {
  switch (c) {
    case FilterCmp::kLt: return FilterCmp::kGt;
    case FilterCmp::kLe: return FilterCmp::kGe;
    case FilterCmp::kGt: return FilterCmp::kLt;
    case FilterCmp::kGe: return FilterCmp::kLe;
    default: return c;
  }
}

std::string_view LiteralKind(const Node& n) {
  if (n.kind == Node::Kind::kList) return "a list";
  switch (n.type.kind) {
    case cel::Type::kString: return "a string";
    case cel::Type::kInt: case cel::Type::kUint: return "an int";
    case cel::Type::kDouble: return "a double";
    case cel::Type::kBool: return "a bool";
    case cel::Type::kNull: return "null";
    case cel::Type::kBytes: return "bytes";
    default: return "a value";
  }
}

class Lowering {
 public:
  Lowering(std::string_view expr, std::span<const FilterColumnSpec> columns) : expr_(expr), columns_(columns) {}

  Result<std::unique_ptr<FilterNode>> Lower(const Node& n) {
    auto out = std::make_unique<FilterNode>();
    if (n.kind == Node::Kind::kLiteral) {
      if (!n.type.is(cel::Type::kBool)) {
        return FilterError(expr_, n.pos, fmt::format("{} literal is not a condition", LiteralKind(n)));
      }
      out->op = FilterOp::kConst;
      out->constant = n.b;
      return out;
    }
    if (n.kind == Node::Kind::kIdent) {
      ASSIGN_OR_RETURN(const FilterColumnSpec* col, Column(n));
      if (col->type != FilterType::kBool) {
        return FilterError(expr_, n.pos,
                           fmt::format("column '{}' is {}, not a condition", col->name, FilterTypeName(col->type)),
                           "compare it, e.g. with == or in");
      }
      out->op = FilterOp::kBoolColumn;
      out->column = col->name;
      out->type = col->type;
      return out;
    }
    if (n.kind == Node::Kind::kList) return FilterError(expr_, n.pos, "a list is not a condition");
    // Calls.
    if (n.name == "_&&_" || n.name == "_||_" || n.name == "!_") {
      out->op = n.name == "_&&_" ? FilterOp::kAnd : n.name == "_||_" ? FilterOp::kOr : FilterOp::kNot;
      for (const auto& arg : n.args) {
        ASSIGN_OR_RETURN(auto child, Lower(*arg));
        out->children.push_back(std::move(child));
      }
      return out;
    }
    if (const std::optional<FilterCmp> cmp = CmpOf(n.name)) return Comparison(n, *cmp);
    if (n.name == "@in") return In(n);
    if (n.member && (n.name == "startsWith" || n.name == "endsWith" || n.name == "contains")) return StringTest(n);
    return FilterError(expr_, n.pos, fmt::format("'{}' is not supported in a filter", DisplayName(n.name)),
                       "compare a column with a literal; combine with &&, || and !");
  }

 private:
  static std::string DisplayName(const std::string& name) {
    std::string out = name;
    std::erase(out, '_');
    return out == "@in" ? "in" : out;
  }

  Result<const FilterColumnSpec*> Column(const Node& n) {
    for (const FilterColumnSpec& c : columns_) {
      if (c.name == n.name) return &c;
    }
    std::string declared;
    for (const FilterColumnSpec& c : columns_) declared += (declared.empty() ? "" : ", ") + c.name;
    return FilterError(expr_, n.pos, fmt::format("unknown column '{}'", n.name),
                       declared.empty() ? "this snapshot declares no filter columns"
                                        : fmt::format("the snapshot's filter columns: {}", declared));
  }

  // `lit` as a value of column `col` into `node`'s literals, or the mismatch.
  Status AddLiteral(const FilterColumnSpec& col, const Node& lit, FilterNode& node) {
    const cel::Type t = lit.kind == Node::Kind::kLiteral ? lit.type.kind : cel::Type::kList;
    bool ok = false;
    switch (col.type) {
      case FilterType::kString:
      case FilterType::kStringList:
        ok = t == cel::Type::kString;
        if (ok) node.strings.push_back(lit.s);
        break;
      case FilterType::kInt:
      case FilterType::kDouble:
        ok = t == cel::Type::kInt || t == cel::Type::kUint || (t == cel::Type::kDouble && !std::isnan(lit.d));
        if (ok) {
          node.numbers.push_back(t == cel::Type::kInt    ? static_cast<long double>(lit.i)
                                 : t == cel::Type::kUint ? static_cast<long double>(lit.u)
                                                         : static_cast<long double>(lit.d));
        }
        break;
      case FilterType::kBool:
        ok = t == cel::Type::kBool;
        if (ok) node.booleans.push_back(lit.b);
        break;
    }
    if (ok) return Status::OK();
    return FilterError(expr_, lit.pos,
                       fmt::format("column '{}' is {}, so it cannot be compared with {}", col.name,
                                   FilterTypeName(col.type), LiteralKind(lit)));
  }

  Result<std::unique_ptr<FilterNode>> Comparison(const Node& n, FilterCmp cmp) {
    for (const auto& side : n.args) {
      if (side->kind == Node::Kind::kCall) {
        return FilterError(expr_, side->pos, fmt::format("'{}' is not supported in a filter", DisplayName(side->name)),
                           "compare a column with a literal");
      }
    }
    const Node* col_node = n.args[0].get();
    const Node* lit = n.args[1].get();
    if (col_node->kind != Node::Kind::kIdent) {
      std::swap(col_node, lit);
      cmp = Flipped(cmp);
    }
    if (col_node->kind != Node::Kind::kIdent || lit->kind == Node::Kind::kIdent) {
      return FilterError(expr_, n.pos,
                         lit->kind == Node::Kind::kIdent ? "comparing two columns is not supported in a filter"
                                                         : "a comparison in a filter needs a column on one side",
                         "compare a column with a literal");
    }
    if (lit->kind != Node::Kind::kLiteral) {
      return FilterError(expr_, lit->pos, "a column can only be compared with a literal in a filter");
    }
    ASSIGN_OR_RETURN(const FilterColumnSpec* col, Column(*col_node));
    auto out = std::make_unique<FilterNode>();
    out->column = col->name;
    out->type = col->type;
    if (lit->type.is(cel::Type::kNull)) {
      if (cmp != FilterCmp::kEq && cmp != FilterCmp::kNe) {
        return FilterError(expr_, n.pos, "null can only be tested with == or !=");
      }
      out->op = cmp == FilterCmp::kEq ? FilterOp::kIsNull : FilterOp::kNotNull;
      return out;
    }
    if (col->type == FilterType::kStringList) {
      return FilterError(expr_, n.pos, fmt::format("column '{}' is list<string>: test it with 'x' in {}", col->name,
                                                   col->name));
    }
    if (col->type == FilterType::kBool && cmp != FilterCmp::kEq && cmp != FilterCmp::kNe) {
      return FilterError(expr_, n.pos, fmt::format("column '{}' is bool: compare it with == or !=", col->name));
    }
    RETURN_IF_ERROR(AddLiteral(*col, *lit, *out));
    out->op = FilterOp::kCompare;
    out->cmp = cmp;
    return out;
  }

  Result<std::unique_ptr<FilterNode>> In(const Node& n) {
    const Node& elem = *n.args[0];
    const Node& container = *n.args[1];
    auto out = std::make_unique<FilterNode>();
    if (container.kind == Node::Kind::kIdent) {
      ASSIGN_OR_RETURN(const FilterColumnSpec* col, Column(container));
      if (col->type != FilterType::kStringList) {
        return FilterError(expr_, container.pos,
                           fmt::format("column '{}' is {}; `in` looks into list<string> columns or a list of literals",
                                       col->name, FilterTypeName(col->type)));
      }
      if (elem.kind != Node::Kind::kLiteral) {
        return FilterError(expr_, elem.pos, fmt::format("`in {}` needs a string literal on its left", col->name));
      }
      out->op = FilterOp::kHasValue;
      out->column = col->name;
      out->type = col->type;
      RETURN_IF_ERROR(AddLiteral(*col, elem, *out));
      return out;
    }
    if (elem.kind != Node::Kind::kIdent || container.kind != Node::Kind::kList) {
      return FilterError(expr_, n.pos, "`in` in a filter is `column in [literals]` or `'x' in list_column`");
    }
    ASSIGN_OR_RETURN(const FilterColumnSpec* col, Column(elem));
    if (col->type == FilterType::kStringList) {
      return FilterError(expr_, elem.pos, fmt::format("column '{}' is list<string>: test it with 'x' in {}",
                                                      col->name, col->name));
    }
    out->op = FilterOp::kInSet;
    out->column = col->name;
    out->type = col->type;
    for (const auto& item : container.args) {
      if (item->kind != Node::Kind::kLiteral || item->type.is(cel::Type::kNull)) {
        return FilterError(expr_, item->pos, "the list after `in` holds literals only");
      }
      RETURN_IF_ERROR(AddLiteral(*col, *item, *out));
    }
    return out;
  }

  Result<std::unique_ptr<FilterNode>> StringTest(const Node& n) {
    if (n.args.size() != 2 || n.args[0]->kind != Node::Kind::kIdent || n.args[1]->kind != Node::Kind::kLiteral ||
        !n.args[1]->type.is(cel::Type::kString)) {
      return FilterError(expr_, n.pos, fmt::format("{} in a filter is column.{}('literal')", n.name, n.name));
    }
    ASSIGN_OR_RETURN(const FilterColumnSpec* col, Column(*n.args[0]));
    if (col->type != FilterType::kString) {
      return FilterError(expr_, n.pos, fmt::format("column '{}' is {}; {} applies to string columns", col->name,
                                                   FilterTypeName(col->type), n.name));
    }
    auto out = std::make_unique<FilterNode>();
    out->op = n.name == "startsWith" ? FilterOp::kStartsWith : n.name == "endsWith" ? FilterOp::kEndsWith
                                                                                    : FilterOp::kContains;
    out->column = col->name;
    out->type = col->type;
    out->strings.push_back(n.args[1]->s);
    return out;
  }

  std::string_view expr_;
  std::span<const FilterColumnSpec> columns_;
};

// A node's outcome per row: true rows, false rows; a row in neither is unknown (a null was tested).
struct Tri {
  std::vector<uint64_t> t, f;
};

template <typename T>
bool Compare(T a, T b, FilterCmp c) {
  switch (c) {
    case FilterCmp::kEq: return a == b;
    case FilterCmp::kNe: return a != b;
    case FilterCmp::kLt: return a < b;
    case FilterCmp::kLe: return a <= b;
    case FilterCmp::kGt: return a > b;
    case FilterCmp::kGe: return a >= b;
  }
  return false;
}

class Evaluator {
 public:
  Evaluator(const FilterColumns& columns, std::string_view shard) : columns_(columns), shard_(shard) {
    words_ = BitmapWords(columns.rows);
    all_.assign(words_, ~uint64_t{0});
    if (columns.rows % 64 != 0 && words_ > 0) all_.back() = (uint64_t{1} << (columns.rows % 64)) - 1;
  }

  Result<Tri> Eval(const FilterNode& node) {
    switch (node.op) {
      case FilterOp::kConst:
        return node.constant ? Tri{all_, Zeros()} : Tri{Zeros(), all_};
      case FilterOp::kNot: {
        ASSIGN_OR_RETURN(Tri inner, Eval(*node.children[0]));
        std::swap(inner.t, inner.f);
        return inner;
      }
      case FilterOp::kAnd:
      case FilterOp::kOr: {
        ASSIGN_OR_RETURN(Tri a, Eval(*node.children[0]));
        ASSIGN_OR_RETURN(Tri b, Eval(*node.children[1]));
        const bool is_and = node.op == FilterOp::kAnd;
        for (size_t w = 0; w < words_; ++w) {
          // and: true when both are, false when either is; or: the reverse.
          a.t[w] = is_and ? (a.t[w] & b.t[w]) : (a.t[w] | b.t[w]);
          a.f[w] = is_and ? (a.f[w] | b.f[w]) : (a.f[w] & b.f[w]);
        }
        return a;
      }
      default: break;
    }
    ASSIGN_OR_RETURN(const FilterColumn* col, ColumnOf(node));
    if (node.op == FilterOp::kIsNull || node.op == FilterOp::kNotNull) {
      Tri out{all_, col->valid};
      for (size_t w = 0; w < words_; ++w) out.t[w] &= ~col->valid[w];
      if (node.op == FilterOp::kNotNull) std::swap(out.t, out.f);
      return out;
    }
    return LeafOf(node, *col);
  }

 private:
  std::vector<uint64_t> Zeros() const { return std::vector<uint64_t>(words_, 0); }

  Result<const FilterColumn*> ColumnOf(const FilterNode& node) const {
    const FilterColumn* col = columns_.Find(node.column);
    if (col == nullptr || col->type != node.type) {
      return Status::Corruption(fmt::format(
          "shard {}: the manifest declares filter column '{}' as {}, but the shard {}", shard_, node.column,
          FilterTypeName(node.type),
          col == nullptr ? "has no such column" : fmt::format("holds it as {}", FilterTypeName(col->type))));
    }
    const auto rows = static_cast<size_t>(columns_.rows);
    const bool sized = col->rows == columns_.rows && col->valid.size() == words_ &&
                       (col->type != FilterType::kInt || col->ints.size() == rows) &&
                       (col->type != FilterType::kDouble || col->doubles.size() == rows) &&
                       (col->type != FilterType::kBool || col->bools.size() == words_) &&
                       (col->type != FilterType::kString || col->codes.size() == rows) &&
                       (col->type != FilterType::kStringList || col->offsets.size() == rows + 1);
    if (!sized) {
      return Status::Corruption(
          fmt::format("shard {}: filter column '{}' does not hold one value per row", shard_, node.column));
    }
    return col;
  }

  // True and false rows of a leaf: its predicate over the rows with a value; null rows are neither.
  template <typename Pass>
  Tri Leaf(const FilterColumn& col, Pass pass) const {
    Tri out{Zeros(), Zeros()};
    for (size_t w = 0; w < words_; ++w) {
      uint64_t bits = 0;
      for (uint64_t valid = col.valid[w]; valid != 0; valid &= valid - 1) {
        const int b = std::countr_zero(valid);
        if (pass(static_cast<int64_t>(w * 64) + b)) bits |= uint64_t{1} << b;
      }
      out.t[w] = bits;
      out.f[w] = col.valid[w] & ~bits;
    }
    return out;
  }

  // A comparison or set test over the column's values (read only for rows with a value).
  Tri LeafOf(const FilterNode& node, const FilterColumn& col) const {
    switch (col.type) {
      case FilterType::kBool: {
        bool when[2];
        PassingBools(node, when);
        return Leaf(col, [&col, when](int64_t r) { return when[col.BoolAt(r)]; });
      }
      case FilterType::kInt:
      case FilterType::kDouble: {
        auto value = [&col](int64_t r) {
          return col.type == FilterType::kInt ? static_cast<long double>(col.ints[static_cast<size_t>(r)])
                                              : static_cast<long double>(col.doubles[static_cast<size_t>(r)]);
        };
        if (node.op == FilterOp::kInSet) {
          return Leaf(col, [&node, value](int64_t r) {
            return std::find(node.numbers.begin(), node.numbers.end(), value(r)) != node.numbers.end();
          });
        }
        const long double lit = node.numbers[0];
        const FilterCmp cmp = node.cmp;
        return Leaf(col, [value, lit, cmp](int64_t r) { return Compare<long double>(value(r), lit, cmp); });
      }
      case FilterType::kString: {
        const std::vector<char> pass = PassingStrings(node, col.dictionary);
        return Leaf(col, [&pass, &col](int64_t r) {
          const uint32_t code = col.codes[static_cast<size_t>(r)];
          return code < pass.size() && pass[code] != 0;
        });
      }
      case FilterType::kStringList: {
        const std::vector<char> pass = PassingStrings(node, col.dictionary);
        return Leaf(col, [&pass, &col](int64_t r) {
          const size_t end = std::min<size_t>(col.offsets[static_cast<size_t>(r) + 1], col.codes.size());
          for (size_t e = col.offsets[static_cast<size_t>(r)]; e < end; ++e) {
            if (col.codes[e] < pass.size() && pass[col.codes[e]]) return true;
          }
          return false;
        });
      }
    }
    return Tri{Zeros(), Zeros()};
  }

  const FilterColumns& columns_;
  std::string_view shard_;
  size_t words_ = 0;
  std::vector<uint64_t> all_;
};

}  // namespace

std::vector<char> PassingStrings(const FilterNode& node, std::span<const std::string> dict) {
  std::vector<char> pass(dict.size(), 0);
  auto bound = [&](bool upper) {
    const std::string& s = node.strings[0];
    return static_cast<size_t>((upper ? std::upper_bound(dict.begin(), dict.end(), s)
                                      : std::lower_bound(dict.begin(), dict.end(), s)) - dict.begin());
  };
  switch (node.op) {
    case FilterOp::kCompare: {
      // The strings are sorted bytewise, as CEL compares strings: a range of them.
      size_t lo = 0, hi = dict.size();
      switch (node.cmp) {
        case FilterCmp::kEq: case FilterCmp::kNe: lo = bound(false); hi = bound(true); break;
        case FilterCmp::kLt: hi = bound(false); break;
        case FilterCmp::kLe: hi = bound(true); break;
        case FilterCmp::kGt: lo = bound(true); break;
        case FilterCmp::kGe: lo = bound(false); break;
      }
      std::fill(pass.begin() + static_cast<std::ptrdiff_t>(lo), pass.begin() + static_cast<std::ptrdiff_t>(hi), 1);
      if (node.cmp == FilterCmp::kNe) {
        for (char& p : pass) p = !p;
      }
      break;
    }
    case FilterOp::kInSet:
    case FilterOp::kHasValue:
      for (const std::string& s : node.strings) {
        const auto it = std::lower_bound(dict.begin(), dict.end(), s);
        if (it != dict.end() && *it == s) pass[static_cast<size_t>(it - dict.begin())] = 1;
      }
      break;
    default:
      for (size_t c = 0; c < dict.size(); ++c) {
        const std::string_view v = dict[c], s = node.strings[0];
        pass[c] = node.op == FilterOp::kStartsWith ? v.starts_with(s)
                  : node.op == FilterOp::kEndsWith ? v.ends_with(s)
                                                   : v.find(s) != std::string_view::npos;
      }
  }
  return pass;
}

void PassingBools(const FilterNode& node, bool when[2]) {
  for (const bool value : {false, true}) {
    when[value] = node.op == FilterOp::kBoolColumn && value;
    // == b, != b or in [...].
    for (const bool lit : node.booleans) {
      when[value] |= node.op == FilterOp::kInSet ? value == lit : Compare<bool>(value, lit, node.cmp);
    }
  }
}

namespace {

// `node` as text: an operator and its operands in brackets, each string as its length and its bytes,
// numbers in hexadecimal floating point (exact for every literal a filter holds).
void AppendCanonical(const FilterNode& node, std::string* out) {
  static constexpr const char* kOps[] = {"and", "or", "not", "const", "cmp", "in", "has", "starts", "ends",
                                         "contains", "null", "notnull", "bool"};
  static constexpr const char* kCmps[] = {"==", "!=", "<", "<=", ">", ">="};
  *out += kOps[static_cast<size_t>(node.op)];
  *out += '(';
  if (node.op == FilterOp::kConst) *out += node.constant ? "true" : "false";
  if (!node.column.empty()) *out += node.column + ',';
  if (node.op == FilterOp::kCompare) *out += std::string(kCmps[static_cast<size_t>(node.cmp)]) + ',';
  for (const std::string& s : node.strings) *out += fmt::format("{}:{},", s.size(), s);
  for (const long double n : node.numbers) {
    char text[64];
    std::snprintf(text, sizeof text, "%La,", n);
    *out += text;
  }
  for (const bool b : node.booleans) *out += b ? "true," : "false,";
  for (const auto& child : node.children) {
    AppendCanonical(*child, out);
    *out += ',';
  }
  *out += ')';
}

}  // namespace

FilterPredicate::FilterPredicate(std::string expr, std::unique_ptr<FilterNode> root)
    : expr_(std::move(expr)), root_(std::move(root)) {
  AppendCanonical(*root_, &canonical_);
}
FilterPredicate::FilterPredicate(FilterPredicate&&) noexcept = default;
FilterPredicate& FilterPredicate::operator=(FilterPredicate&&) noexcept = default;
FilterPredicate::~FilterPredicate() = default;

Result<FilterPredicate> FilterPredicate::Compile(std::string_view expr, std::span<const FilterColumnSpec> columns) {
  Result<std::unique_ptr<cel::Node>> parsed = cel::Parse(expr);
  if (!parsed.ok()) return Renamed(parsed.status());
  Lowering lowering(expr, columns);
  ASSIGN_OR_RETURN(std::unique_ptr<FilterNode> root, lowering.Lower(**parsed));
  return FilterPredicate(std::string(expr), std::move(root));
}

Result<std::vector<uint64_t>> FilterPredicate::Evaluate(const FilterColumns& columns, std::string_view shard_name) const {
  Evaluator evaluator(columns, shard_name);
  ASSIGN_OR_RETURN(Tri result, evaluator.Eval(*root_));
  return std::move(result.t);
}

int64_t CountRows(std::span<const uint64_t> bitmap) {
  int64_t n = 0;
  for (const uint64_t w : bitmap) n += std::popcount(w);
  return n;
}

std::vector<int64_t> SetRows(std::span<const uint64_t> bitmap) {
  std::vector<int64_t> rows;
  rows.reserve(static_cast<size_t>(CountRows(bitmap)));
  for (size_t w = 0; w < bitmap.size(); ++w) {
    for (uint64_t bits = bitmap[w]; bits != 0; bits &= bits - 1) {
      rows.push_back(static_cast<int64_t>(w * 64) + std::countr_zero(bits));
    }
  }
  return rows;
}

void AppendSetRows(std::span<const uint64_t> bitmap, RowRange range, std::vector<int64_t>* rows) {
  for (int64_t w = range.begin >> 6; w <= (range.end - 1) >> 6 && range.begin < range.end; ++w) {
    uint64_t bits = bitmap[static_cast<size_t>(w)];
    if (w == range.begin >> 6) bits &= ~uint64_t{0} << (range.begin & 63);
    if (w == (range.end - 1) >> 6 && (range.end & 63) != 0) bits &= ~uint64_t{0} >> (64 - (range.end & 63));
    for (; bits != 0; bits &= bits - 1) rows->push_back(w * 64 + std::countr_zero(bits));
  }
}

namespace {

bool IsSet(std::span<const uint64_t> bitmap, int64_t row) {
  return (bitmap[static_cast<size_t>(row >> 6)] >> (row & 63)) & 1;
}

}  // namespace

int64_t CountSet(std::span<const uint64_t> bitmap, RowRange range) {
  int64_t n = 0;
  int64_t r = range.begin;
  for (; r < range.end && (r & 63) != 0; ++r) n += IsSet(bitmap, r);
  for (; r + 64 <= range.end; r += 64) n += std::popcount(bitmap[static_cast<size_t>(r >> 6)]);
  for (; r < range.end; ++r) n += IsSet(bitmap, r);
  return n;
}

std::vector<RowRange> SetRuns(std::span<const uint64_t> bitmap, RowRange range) {
  std::vector<RowRange> runs;
  int64_t r = range.begin;
  while (r < range.end) {
    // Skip clear rows a word at a time where the word is empty.
    if ((r & 63) == 0 && bitmap[static_cast<size_t>(r >> 6)] == 0) {
      r += 64;
      continue;
    }
    if (!IsSet(bitmap, r)) {
      ++r;
      continue;
    }
    const int64_t begin = r;
    while (r < range.end && IsSet(bitmap, r)) ++r;
    runs.push_back(RowRange{begin, r});
  }
  return runs;
}

}  // namespace shardvec
