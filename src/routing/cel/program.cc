// Compile (parse, check, lower) and the evaluator: a switch over a flat instruction array with a
// value stack in the caller's Scratch. Errors travel as kError values so && and || can absorb them
// as CEL requires; nothing here allocates once the Scratch has grown to the program's needs.
#include "routing/cel/program.h"

#include <atomic>
#include <cmath>
#include <cstring>
#include <deque>
#include <limits>

#include "routing/cel/checker.h"
#include "routing/cel/conversions.h"
#include "routing/cel/lexer.h"
#include "routing/cel/parser.h"

namespace shardvec::cel {

// A bump allocator for strings built during one evaluation; chunks are kept across evaluations.
struct Arena {
  std::vector<std::unique_ptr<char[]>> chunks;
  std::vector<size_t> caps;
  size_t cur = 0;
  size_t used = 0;

  void Reset() { cur = 0, used = 0; }
  char* Alloc(size_t n) {
    while (cur < chunks.size()) {
      if (caps[cur] - used >= n) {
        char* p = chunks[cur].get() + used;
        used += n;
        return p;
      }
      ++cur;
      used = 0;
    }
    const size_t cap = std::max<size_t>(n, size_t{4096} << std::min<size_t>(chunks.size(), 16));
    chunks.push_back(std::make_unique<char[]>(cap));
    caps.push_back(cap);
    cur = chunks.size() - 1;
    used = n;
    return chunks[cur].get();
  }
};

struct Scratch::Impl {
  std::vector<Value> stack;
  std::vector<Value> lists;  // elements of lists built during this evaluation
  Arena arena;
};

Scratch::Scratch() : impl_(std::make_unique<Impl>()) {}
Scratch::~Scratch() = default;

std::string_view TypeName(Type type) {
  switch (type) {
    case Type::kNull: return "null_type";
    case Type::kBool: return "bool";
    case Type::kInt: return "int";
    case Type::kUint: return "uint";
    case Type::kDouble: return "double";
    case Type::kString: return "string";
    case Type::kBytes: return "bytes";
    case Type::kList: return "list";
    case Type::kDyn: return "dyn";
    case Type::kUnbound: return "unbound";
    case Type::kError: return "error";
  }
  return "unknown";
}

Result<Type> ParseColumnType(std::string_view name, std::string_view field) {
  if (name == "int") return Type::kInt;
  if (name == "uint") return Type::kUint;
  if (name == "double") return Type::kDouble;
  if (name == "string") return Type::kString;
  if (name == "bytes") return Type::kBytes;
  if (name == "bool") return Type::kBool;
  return Status::InvalidArgument(std::string(field) + " is '" + std::string(name) +
                                 "'; expected one of int, uint, double, string, bytes, bool");
}

namespace {

std::string_view ErrorText(ErrorCode code) {
  switch (code) {
    case ErrorCode::kNone: return "error";
    case ErrorCode::kUnbound: return "no value in routing_context for";
    case ErrorCode::kIntOverflow: return "integer overflow";
    case ErrorCode::kUintOverflow: return "unsigned integer overflow";
    case ErrorCode::kDivideByZero: return "divide by zero";
    case ErrorCode::kModulusByZero: return "modulus by zero";
    case ErrorCode::kDoubleToIntRange: return "double out of int64 range";
    case ErrorCode::kDoubleToUintRange: return "double out of uint64 range";
    case ErrorCode::kIntToUintRange: return "int64 out of uint64 range";
    case ErrorCode::kUintToIntRange: return "uint64 out of int64 range";
    case ErrorCode::kStringToInt: return "cannot convert string to int";
    case ErrorCode::kStringToUint: return "cannot convert string to uint";
    case ErrorCode::kStringToDouble: return "cannot convert string to double";
    case ErrorCode::kStringToBool: return "cannot convert string to bool";
    case ErrorCode::kMalformedUtf8: return "malformed UTF-8 bytes";
    case ErrorCode::kHashUintRange: return "shard_hash: uint above INT64_MAX has no canonical int64 bytes";
  }
  return "error";
}

bool IsNumeric(Type t) { return t == Type::kInt || t == Type::kUint || t == Type::kDouble; }

// Exact comparison of an int64 with a double (no rounding of the int).
bool IntEqualsDouble(int64_t i, double d) {
  if (!(d >= -9.223372036854775808e18 && d < 9.223372036854775808e18) || d != std::trunc(d)) return false;
  return static_cast<int64_t>(d) == i;
}
bool UintEqualsDouble(uint64_t u, double d) {
  if (!(d >= 0 && d < 1.8446744073709551616e19) || d != std::trunc(d)) return false;
  return static_cast<uint64_t>(d) == u;
}

class ProgramImpl final : public Program {
 public:
  Type result_type() const override { return result_type_; }
  const std::vector<std::pair<std::string, Type>>& variables() const override { return vars_; }
  Status Bind(const RoutingContext& context, std::span<Value> slots) const override;
  Result<Value> Evaluate(std::span<const Value> slots, Scratch& scratch) const override;

  Status Lower(const Node& root) {
    Emit(root);
    if (!lower_status_.ok()) return lower_status_;
    return Status::OK();
  }

  std::string expr_;
  std::vector<std::pair<std::string, Type>> vars_;
  Type result_type_ = Type::kDyn;

 private:
  const Value* Elems(const Value& list, const Scratch::Impl& s) const {
    return list.b ? const_elems_.data() + list.i : s.lists.data() + list.i;
  }
  bool Equal(const Value& a, const Value& b, const Scratch::Impl& s) const;

  void Push(Op op, uint32_t pos, int32_t a = 0, int32_t b = 0, int32_t c = 0) {
    code_.push_back(Instr{op, pos, a, b, c});
  }
  void Grow(int delta) {
    depth_ += delta;
    max_depth_ = std::max(max_depth_, depth_);
  }
  int32_t AddConst(const Value& v) {
    consts_.push_back(v);
    return static_cast<int32_t>(consts_.size() - 1);
  }
  Value LiteralValue(const Node& n) {
    Value v;
    v.type = n.type.kind;
    v.b = n.b;
    v.i = n.i;
    v.u = n.u;
    v.d = n.d;
    if (v.type == Type::kString || v.type == Type::kBytes) v.s = strings_.emplace_back(n.s);
    return v;
  }
  static bool IsConstant(const Node& n) {
    if (n.kind == Node::Kind::kLiteral) return true;
    if (n.kind != Node::Kind::kList) return false;
    for (const auto& a : n.args) {
      if (!IsConstant(*a)) return false;
    }
    return true;
  }
  // A constant list's value; its elements go to const_elems_ (nested lists first).
  Value ConstList(const Node& n) {
    std::vector<Value> elems;
    for (const auto& a : n.args) elems.push_back(a->kind == Node::Kind::kList ? ConstList(*a) : LiteralValue(*a));
    Value v;
    v.type = Type::kList;
    v.b = true;
    v.i = static_cast<int64_t>(const_elems_.size());
    v.u = elems.size();
    const_elems_.insert(const_elems_.end(), elems.begin(), elems.end());
    return v;
  }

  void Emit(const Node& n) {
    switch (n.kind) {
      case Node::Kind::kLiteral:
        Push(Op::kConst, n.pos, AddConst(LiteralValue(n)));
        Grow(1);
        return;
      case Node::Kind::kIdent:
        Push(Op::kVar, n.pos, n.slot);
        Grow(1);
        return;
      case Node::Kind::kList:
        if (IsConstant(n)) {
          Push(Op::kConst, n.pos, AddConst(ConstList(n)));
          Grow(1);
          return;
        }
        for (const auto& a : n.args) Emit(*a);
        Push(Op::kMakeList, n.pos, static_cast<int32_t>(n.args.size()));
        Grow(1 - static_cast<int>(n.args.size()));
        return;
      case Node::Kind::kCall: break;
    }
    const Op op = static_cast<Op>(n.op);
    if (op == Op::kAnd || op == Op::kOr) {
      Emit(*n.args[0]);
      const size_t jump = code_.size();
      Push(op == Op::kAnd ? Op::kJumpIfFalseKeep : Op::kJumpIfTrueKeep, n.pos);
      Emit(*n.args[1]);
      Push(op, n.pos);
      Grow(-1);
      code_[jump].a = static_cast<int32_t>(code_.size());
      return;
    }
    if (n.name == "_?_:_") {
      Emit(*n.args[0]);
      const size_t cond = code_.size();
      Push(Op::kCondJump, n.pos);
      Grow(-1);
      Emit(*n.args[1]);
      const size_t skip = code_.size();
      Push(Op::kJump, n.pos);
      Grow(-1);
      code_[cond].a = static_cast<int32_t>(code_.size());
      Emit(*n.args[2]);
      code_[cond].b = code_[skip].a = static_cast<int32_t>(code_.size());
      return;
    }
    for (const auto& a : n.args) Emit(*a);
    if (op == Op::kIdentity) return;
    Push(op, n.pos);
    Grow(1 - static_cast<int>(n.args.size()));
  }

  std::vector<Instr> code_;
  std::vector<Value> consts_;
  std::vector<Value> const_elems_;
  std::deque<std::string> strings_;  // deque: views into it stay valid as it grows
  int depth_ = 0;
  int max_depth_ = 0;
  Status lower_status_;
};

bool ProgramImpl::Equal(const Value& a, const Value& b, const Scratch::Impl& s) const {
  if (a.type != b.type) {
    if (!IsNumeric(a.type) || !IsNumeric(b.type)) return false;
    // CEL heterogeneous equality: numbers compare by value across int, uint and double.
    if (a.type == Type::kInt && b.type == Type::kUint) return a.i >= 0 && static_cast<uint64_t>(a.i) == b.u;
    if (a.type == Type::kUint && b.type == Type::kInt) return b.i >= 0 && static_cast<uint64_t>(b.i) == a.u;
    if (a.type == Type::kInt) return IntEqualsDouble(a.i, b.d);
    if (b.type == Type::kInt) return IntEqualsDouble(b.i, a.d);
    if (a.type == Type::kUint) return UintEqualsDouble(a.u, b.d);
    return UintEqualsDouble(b.u, a.d);
  }
  switch (a.type) {
    case Type::kNull: return true;
    case Type::kBool: return a.b == b.b;
    case Type::kInt: return a.i == b.i;
    case Type::kUint: return a.u == b.u;
    case Type::kDouble: return a.d == b.d;
    case Type::kString:
    case Type::kBytes: return a.s == b.s;
    case Type::kList: {
      if (a.u != b.u) return false;
      const Value* ea = Elems(a, s);
      const Value* eb = Elems(b, s);
      for (uint64_t k = 0; k < a.u; ++k) {
        if (!Equal(ea[k], eb[k], s)) return false;
      }
      return true;
    }
    default: return false;
  }
}

Status ProgramImpl::Bind(const RoutingContext& context, std::span<Value> slots) const {
  if (slots.size() != vars_.size()) {
    return Status::InvalidArgument("CEL Bind: " + std::to_string(slots.size()) + " slots for " +
                                   std::to_string(vars_.size()) + " variables");
  }
  // Both sides are sorted by name: one merge pass instead of a lookup per variable.
  auto it = context.begin();
  for (size_t k = 0; k < vars_.size(); ++k) {
    const auto& [name, type] = vars_[k];
    Value& v = slots[k];
    v = Value{};
    while (it != context.end() && it->first < name) ++it;
    if (it == context.end() || it->first != name) continue;  // unbound: an error only if evaluation reads it
    const RoutingValue& rv = it->second;
    bool ok = true;
    v.type = type;
    switch (type) {
      case Type::kInt:
        if (const auto* i = std::get_if<int64_t>(&rv)) v.i = *i;
        else if (const auto* u = std::get_if<uint64_t>(&rv); u && *u <= static_cast<uint64_t>(INT64_MAX)) v.i = static_cast<int64_t>(*u);
        else ok = false;
        break;
      case Type::kUint:
        if (const auto* u = std::get_if<uint64_t>(&rv)) v.u = *u;
        else if (const auto* i = std::get_if<int64_t>(&rv); i && *i >= 0) v.u = static_cast<uint64_t>(*i);
        else ok = false;
        break;
      case Type::kDouble:
        if (const auto* d = std::get_if<double>(&rv)) v.d = *d;
        else if (const auto* i = std::get_if<int64_t>(&rv)) v.d = static_cast<double>(*i);
        else if (const auto* u = std::get_if<uint64_t>(&rv)) v.d = static_cast<double>(*u);
        else ok = false;
        break;
      case Type::kString:
        if (const auto* s = std::get_if<std::string>(&rv)) {
          v.s = *s;
          if (!IsValidUtf8(v.s)) {
            return Status::InvalidArgument("routing_context['" + name + "'] is not valid UTF-8");
          }
        } else {
          ok = false;
        }
        break;
      case Type::kBytes:
        if (const auto* b = std::get_if<Bytes>(&rv)) v.s = b->data;
        else ok = false;
        break;
      case Type::kBool:
        if (const auto* b = std::get_if<bool>(&rv)) v.b = *b;
        else ok = false;
        break;
      default: ok = false; break;
    }
    if (!ok) {
      v = Value{};
      return Status::InvalidArgument("routing_context['" + name + "'] must be " + std::string(TypeName(type)) +
                                     " (cel_columns), got " + RoutingValueToString(rv));
    }
  }
  return Status::OK();
}

Result<Value> ProgramImpl::Evaluate(std::span<const Value> slots, Scratch& scratch) const {
  Scratch::Impl& s = scratch.impl();
  if (s.stack.size() < static_cast<size_t>(max_depth_) + 1) s.stack.resize(static_cast<size_t>(max_depth_) + 1);
  s.lists.clear();
  s.arena.Reset();
  if (slots.size() != vars_.size()) {
    return Status::InvalidArgument("CEL Evaluate: " + std::to_string(slots.size()) + " slots for " +
                                   std::to_string(vars_.size()) + " variables");
  }
  Value* const base = s.stack.data();
  Value* sp = base;  // next free slot
  const Instr* const code = code_.data();
  const size_t n = code_.size();

  auto fail = [](Value& v, ErrorCode e, uint32_t pos) {
    v.type = Type::kError;
    v.u = static_cast<uint64_t>(e);
    v.i = pos;
    v.s = {};
  };
  auto make_string = [&](Value& v, Type t, const char* data, size_t len) {
    char* p = s.arena.Alloc(len);
    if (len) std::memcpy(p, data, len);
    v.type = t;
    v.s = std::string_view(p, len);
  };

// Binary operators: a = left (becomes the result), b = right. An error operand is the result.
#define BINARY                                  \
  Value& a = sp[-2];                            \
  const Value& b = sp[-1];                      \
  --sp;                                         \
  if (a.type == Type::kError) break;            \
  if (b.type == Type::kError) {                 \
    a = b;                                      \
    break;                                      \
  }
#define UNARY                         \
  Value& a = sp[-1];                  \
  if (a.type == Type::kError) break;
#define SET_BOOL(expr)       \
  {                          \
    const bool r_ = (expr);  \
    a.type = Type::kBool;    \
    a.b = r_;                \
  }

  for (size_t pc = 0; pc < n; ++pc) {
    const Instr& in = code[pc];
    switch (in.op) {
      case Op::kNone:
      case Op::kIdentity: break;
      case Op::kConst: *sp++ = consts_[static_cast<size_t>(in.a)]; break;
      case Op::kVar: {
        const Value& v = slots[static_cast<size_t>(in.a)];
        if (v.type == vars_[static_cast<size_t>(in.a)].second) {
          *sp++ = v;
        } else {
          fail(*sp, ErrorCode::kUnbound, in.pos);
          sp->s = vars_[static_cast<size_t>(in.a)].first;
          ++sp;
        }
        break;
      }
      case Op::kNegInt: {
        UNARY
        if (a.i == std::numeric_limits<int64_t>::min()) fail(a, ErrorCode::kIntOverflow, in.pos);
        else a.i = -a.i;
        break;
      }
      case Op::kNegDouble: { UNARY a.d = -a.d; break; }
      case Op::kNot: { UNARY a.b = !a.b; break; }
      case Op::kAddInt: { BINARY if (__builtin_add_overflow(a.i, b.i, &a.i)) fail(a, ErrorCode::kIntOverflow, in.pos); break; }
      case Op::kSubInt: { BINARY if (__builtin_sub_overflow(a.i, b.i, &a.i)) fail(a, ErrorCode::kIntOverflow, in.pos); break; }
      case Op::kMulInt: { BINARY if (__builtin_mul_overflow(a.i, b.i, &a.i)) fail(a, ErrorCode::kIntOverflow, in.pos); break; }
      case Op::kDivInt: {
        BINARY
        if (b.i == 0) fail(a, ErrorCode::kDivideByZero, in.pos);
        else if (b.i == -1 && a.i == std::numeric_limits<int64_t>::min()) fail(a, ErrorCode::kIntOverflow, in.pos);
        else a.i /= b.i;
        break;
      }
      case Op::kModInt: {
        BINARY
        if (b.i == 0) fail(a, ErrorCode::kModulusByZero, in.pos);
        else if (b.i == -1 && a.i == std::numeric_limits<int64_t>::min()) fail(a, ErrorCode::kIntOverflow, in.pos);
        else a.i %= b.i;
        break;
      }
      case Op::kAddUint: { BINARY if (__builtin_add_overflow(a.u, b.u, &a.u)) fail(a, ErrorCode::kUintOverflow, in.pos); break; }
      case Op::kSubUint: { BINARY if (__builtin_sub_overflow(a.u, b.u, &a.u)) fail(a, ErrorCode::kUintOverflow, in.pos); break; }
      case Op::kMulUint: { BINARY if (__builtin_mul_overflow(a.u, b.u, &a.u)) fail(a, ErrorCode::kUintOverflow, in.pos); break; }
      case Op::kDivUint: { BINARY if (b.u == 0) fail(a, ErrorCode::kDivideByZero, in.pos); else a.u /= b.u; break; }
      case Op::kModUint: { BINARY if (b.u == 0) fail(a, ErrorCode::kModulusByZero, in.pos); else a.u %= b.u; break; }
      case Op::kAddDouble: { BINARY a.d += b.d; break; }
      case Op::kSubDouble: { BINARY a.d -= b.d; break; }
      case Op::kMulDouble: { BINARY a.d *= b.d; break; }
      case Op::kDivDouble: { BINARY a.d /= b.d; break; }
      case Op::kAddString:
      case Op::kAddBytes: {
        BINARY
        char* p = s.arena.Alloc(a.s.size() + b.s.size());
        if (!a.s.empty()) std::memcpy(p, a.s.data(), a.s.size());
        if (!b.s.empty()) std::memcpy(p + a.s.size(), b.s.data(), b.s.size());
        a.s = std::string_view(p, a.s.size() + b.s.size());
        break;
      }
      case Op::kAddList: {
        BINARY
        const size_t start = s.lists.size();
        // Copy by index: push_back may move the storage the elements are read from.
        for (uint64_t k = 0; k < a.u; ++k) s.lists.push_back(Elems(a, s)[k]);
        for (uint64_t k = 0; k < b.u; ++k) s.lists.push_back(Elems(b, s)[k]);
        a.i = static_cast<int64_t>(start);
        a.u = a.u + b.u;
        a.b = false;
        break;
      }
#define COMPARE(OP_EQ, FIELD)                                   \
  case Op::OP_EQ: { BINARY SET_BOOL(a.FIELD == b.FIELD) break; } \
  case static_cast<Op>(static_cast<int>(Op::OP_EQ) + 1): { BINARY SET_BOOL(a.FIELD != b.FIELD) break; } \
  case static_cast<Op>(static_cast<int>(Op::OP_EQ) + 2): { BINARY SET_BOOL(a.FIELD < b.FIELD) break; } \
  case static_cast<Op>(static_cast<int>(Op::OP_EQ) + 3): { BINARY SET_BOOL(a.FIELD <= b.FIELD) break; } \
  case static_cast<Op>(static_cast<int>(Op::OP_EQ) + 4): { BINARY SET_BOOL(a.FIELD > b.FIELD) break; } \
  case static_cast<Op>(static_cast<int>(Op::OP_EQ) + 5): { BINARY SET_BOOL(a.FIELD >= b.FIELD) break; }
      COMPARE(kEqInt, i)
      COMPARE(kEqUint, u)
      COMPARE(kEqDouble, d)
      COMPARE(kEqString, s)
      COMPARE(kEqBool, b)
#undef COMPARE
      case Op::kEqAny: { BINARY SET_BOOL(Equal(a, b, s)) break; }
      case Op::kNeAny: { BINARY SET_BOOL(!Equal(a, b, s)) break; }
      case Op::kIn: {
        BINARY
        bool found = false;
        const Value* e = Elems(b, s);
        for (uint64_t k = 0; k < b.u && !found; ++k) found = Equal(a, e[k], s);
        SET_BOOL(found)
        break;
      }
      case Op::kMakeList: {
        const size_t count = static_cast<size_t>(in.a);
        Value* first = sp - count;
        Value list;
        list.type = Type::kList;
        list.i = static_cast<int64_t>(s.lists.size());
        list.u = count;
        for (size_t k = 0; k < count; ++k) {
          if (first[k].type == Type::kError) {
            list = first[k];
            break;
          }
        }
        if (list.type == Type::kList) s.lists.insert(s.lists.end(), first, sp);
        sp = first;
        *sp++ = list;
        break;
      }
      case Op::kSizeString: { UNARY a.i = CodePointCount(a.s); a.type = Type::kInt; break; }
      case Op::kSizeBytes: { UNARY a.i = static_cast<int64_t>(a.s.size()); a.type = Type::kInt; break; }
      case Op::kSizeList: { UNARY a.i = static_cast<int64_t>(a.u); a.type = Type::kInt; break; }
      case Op::kStartsWith: { BINARY SET_BOOL(a.s.starts_with(b.s)) break; }
      case Op::kEndsWith: { BINARY SET_BOOL(a.s.ends_with(b.s)) break; }
      case Op::kContains: { BINARY SET_BOOL(a.s.find(b.s) != std::string_view::npos) break; }
      case Op::kIntFromUint: {
        UNARY
        if (a.u > static_cast<uint64_t>(INT64_MAX)) fail(a, ErrorCode::kUintToIntRange, in.pos);
        else a.i = static_cast<int64_t>(a.u), a.type = Type::kInt;
        break;
      }
      case Op::kIntFromDouble: {
        UNARY
        if (!(a.d > -9.223372036854775808e18 && a.d < 9.223372036854775808e18)) fail(a, ErrorCode::kDoubleToIntRange, in.pos);
        else a.i = static_cast<int64_t>(a.d), a.type = Type::kInt;
        break;
      }
      case Op::kIntFromString: {
        UNARY
        if (!ParseIntText(a.s, a.i)) fail(a, ErrorCode::kStringToInt, in.pos);
        else a.type = Type::kInt;
        break;
      }
      case Op::kUintFromInt: {
        UNARY
        if (a.i < 0) fail(a, ErrorCode::kIntToUintRange, in.pos);
        else a.u = static_cast<uint64_t>(a.i), a.type = Type::kUint;
        break;
      }
      case Op::kUintFromDouble: {
        UNARY
        if (!(a.d >= 0 && a.d < 1.8446744073709551616e19)) fail(a, ErrorCode::kDoubleToUintRange, in.pos);
        else a.u = static_cast<uint64_t>(a.d), a.type = Type::kUint;
        break;
      }
      case Op::kUintFromString: {
        UNARY
        if (!ParseUintText(a.s, a.u)) fail(a, ErrorCode::kStringToUint, in.pos);
        else a.type = Type::kUint;
        break;
      }
      case Op::kDoubleFromInt: { UNARY a.d = static_cast<double>(a.i); a.type = Type::kDouble; break; }
      case Op::kDoubleFromUint: { UNARY a.d = static_cast<double>(a.u); a.type = Type::kDouble; break; }
      case Op::kDoubleFromString: {
        UNARY
        if (!ParseDoubleText(a.s, a.d)) fail(a, ErrorCode::kStringToDouble, in.pos);
        else a.type = Type::kDouble;
        break;
      }
      case Op::kStringFromInt: { UNARY char buf[kNumberBufSize]; make_string(a, Type::kString, buf, FormatInt(a.i, buf)); break; }
      case Op::kStringFromUint: { UNARY char buf[kNumberBufSize]; make_string(a, Type::kString, buf, FormatUint(a.u, buf)); break; }
      case Op::kStringFromDouble: { UNARY char buf[kNumberBufSize]; make_string(a, Type::kString, buf, FormatDouble(a.d, buf)); break; }
      case Op::kStringFromBool: {
        UNARY
        a.s = a.b ? std::string_view("true") : std::string_view("false");
        a.type = Type::kString;
        break;
      }
      case Op::kStringFromBytes: {
        UNARY
        if (!IsValidUtf8(a.s)) fail(a, ErrorCode::kMalformedUtf8, in.pos);
        else a.type = Type::kString;
        break;
      }
      case Op::kBytesFromString: { UNARY a.type = Type::kBytes; break; }
      case Op::kBoolFromString: {
        UNARY
        if (!ParseBoolText(a.s, a.b)) fail(a, ErrorCode::kStringToBool, in.pos);
        else a.type = Type::kBool;
        break;
      }
      case Op::kHashInt: { UNARY a.u = ShardHashInt(a.i); a.type = Type::kUint; break; }
      case Op::kHashUint: {
        UNARY
        if (a.u > static_cast<uint64_t>(INT64_MAX)) fail(a, ErrorCode::kHashUintRange, in.pos);
        else a.u = ShardHashInt(static_cast<int64_t>(a.u)), a.type = Type::kUint;
        break;
      }
      case Op::kHashBytes: { UNARY a.u = ShardHashBytes(a.s); a.type = Type::kUint; break; }
      case Op::kJumpIfFalseKeep:
        if (sp[-1].type == Type::kBool && !sp[-1].b) pc = static_cast<size_t>(in.a) - 1;
        break;
      case Op::kJumpIfTrueKeep:
        if (sp[-1].type == Type::kBool && sp[-1].b) pc = static_cast<size_t>(in.a) - 1;
        break;
      case Op::kAnd:
      case Op::kOr: {
        // CEL: false && x == false, true || x == true even when x is an error; else the first error.
        Value& a = sp[-2];
        const Value& b = sp[-1];
        --sp;
        const bool absorb = in.op == Op::kAnd ? false : true;
        if ((a.type == Type::kBool && a.b == absorb) || (b.type == Type::kBool && b.b == absorb)) {
          a.type = Type::kBool;
          a.b = absorb;
        } else if (a.type == Type::kError) {
        } else if (b.type == Type::kError) {
          a = b;
        } else {
          a.b = !absorb;
        }
        break;
      }
      case Op::kCondJump: {
        const Value c = *--sp;
        if (c.type == Type::kError) {
          *sp++ = c;
          pc = static_cast<size_t>(in.b) - 1;
        } else if (!c.b) {
          pc = static_cast<size_t>(in.a) - 1;
        }
        break;
      }
      case Op::kJump: pc = static_cast<size_t>(in.a) - 1; break;
    }
  }
#undef BINARY
#undef UNARY
#undef SET_BOOL
  const Value result = base[0];
  if (result.type == Type::kError) {
    const auto code = static_cast<ErrorCode>(result.u);
    std::string what(ErrorText(code));
    if (code == ErrorCode::kUnbound) what += " '" + std::string(result.s) + "'";
    return FormatCompileError(expr_, static_cast<uint32_t>(result.i), what);
  }
  return result;
}

}  // namespace

namespace {
std::atomic<int64_t> compile_calls{0};
}  // namespace

int64_t Program::CompileCalls() { return compile_calls.load(std::memory_order_relaxed); }

Result<std::shared_ptr<const Program>> Program::Compile(std::string_view expr,
                                                        const std::map<std::string, std::string>& columns) {
  compile_calls.fetch_add(1, std::memory_order_relaxed);
  auto program = std::make_shared<ProgramImpl>();
  for (const auto& [name, type_name] : columns) {
    auto type = ParseColumnType(type_name, "cel_columns['" + name + "']");
    if (!type.ok()) return type.status();
    program->vars_.emplace_back(name, *type);
  }
  auto root = Parse(expr);
  if (!root.ok()) return root.status();
  if (Status s = Check(**root, expr, program->vars_); !s.ok()) return s;
  program->expr_ = std::string(expr);
  const TypeInfo t = (*root)->type;
  program->result_type_ = t.depth > 0 ? Type::kList : t.kind;
  if (Status s = program->Lower(**root); !s.ok()) return s;
  return std::shared_ptr<const Program>(std::move(program));
}

}  // namespace shardvec::cel
