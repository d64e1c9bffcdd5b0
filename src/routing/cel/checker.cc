// CEL type checker for the routing subset. Overload sets follow cel-cpp's standard declarations, so
// an expression compiles here exactly when it compiles against the reference (differential tests).
#include "routing/cel/checker.h"

#include <optional>
#include <string>

#include "routing/cel/parser.h"
#include "routing/cel/program.h"

namespace shardvec::cel {

std::string TypeInfoName(TypeInfo t) {
  std::string inner = std::string(TypeName(t.kind));
  for (int k = 0; k < t.depth; ++k) inner = "list(" + inner + ")";
  return inner;
}

bool Assignable(TypeInfo a, TypeInfo b) {
  while (true) {
    if (a.is(Type::kDyn) || b.is(Type::kDyn)) return true;
    if (a.depth == 0 || b.depth == 0) return a == b;
    --a.depth;
    --b.depth;
  }
}

namespace {

// The more general of two assignable types (list(dyn) over list(int)).
TypeInfo Join(TypeInfo a, TypeInfo b) {
  if (a == b) return a;
  if (a.kind == Type::kDyn && (b.kind != Type::kDyn || a.depth < b.depth)) return a;
  if (b.kind == Type::kDyn) return b;
  return a;
}

TypeInfo Elem(TypeInfo list) { return list.depth == 0 ? TypeInfo{Type::kDyn, 0} : TypeInfo{list.kind, static_cast<uint8_t>(list.depth - 1)}; }

constexpr TypeInfo kInt{Type::kInt, 0}, kUint{Type::kUint, 0}, kDouble{Type::kDouble, 0}, kString{Type::kString, 0},
    kBytes{Type::kBytes, 0}, kBool{Type::kBool, 0};

class Checker {
 public:
  Checker(std::string_view expr, const std::vector<std::pair<std::string, Type>>& vars) : expr_(expr), vars_(vars) {}

  Status Visit(Node& n) {
    switch (n.kind) {
      case Node::Kind::kLiteral: return Status::OK();  // typed by the parser
      case Node::Kind::kIdent: {
        for (size_t k = 0; k < vars_.size(); ++k) {
          if (vars_[k].first == n.name) {
            n.slot = static_cast<int32_t>(k);
            n.type = TypeInfo{vars_[k].second, 0};
            return Status::OK();
          }
        }
        return FormatCompileError(expr_, n.pos, "undeclared reference to '" + n.name + "'",
                                  "declare it in cel_columns");
      }
      case Node::Kind::kList: {
        std::optional<TypeInfo> elem;
        bool mixed = false;
        for (auto& a : n.args) {
          if (Status s = Visit(*a); !s.ok()) return s;
          if (!elem) elem = a->type;
          else if (!(*elem == a->type)) mixed = true;
        }
        TypeInfo e = (!elem || mixed) ? TypeInfo{Type::kDyn, 0} : *elem;
        if (e.depth >= 250) return FormatCompileError(expr_, n.pos, "lists are nested too deeply");
        n.type = TypeInfo{e.kind, static_cast<uint8_t>(e.depth + 1)};
        return Status::OK();
      }
      case Node::Kind::kCall: break;
    }
    for (auto& a : n.args) {
      if (Status s = Visit(*a); !s.ok()) return s;
    }
    return Call(n);
  }

 private:
  Status NoOverload(const Node& n, std::string_view hint = {}) {
    std::string types;
    for (const auto& a : n.args) types += (types.empty() ? "" : ", ") + TypeInfoName(a->type);
    return FormatCompileError(expr_, n.pos,
                              "found no matching overload for '" + n.name + "' applied to '(" + types + ")'", hint);
  }
  Status Set(Node& n, Op op, TypeInfo type) {
    n.op = static_cast<uint16_t>(op);
    n.type = type;
    return Status::OK();
  }

  // The hint for mixing int and uint (or double) operands: the usual slip is `x % 32` for `x % 32u`.
  static std::string MixHint(const Node& n) {
    const Node& l = *n.args[0];
    const Node& r = *n.args[1];
    auto literal_hint = [](const Node& lit, TypeInfo want) -> std::string {
      if (lit.kind != Node::Kind::kLiteral) return {};
      if (want.is(Type::kUint) && lit.type.is(Type::kInt) && lit.i >= 0) {
        return "write the literal as " + std::to_string(lit.i) + "u, or convert with int(...)";
      }
      if (want.is(Type::kInt) && lit.type.is(Type::kUint) &&
          lit.u <= static_cast<uint64_t>(INT64_MAX)) {
        return "write the literal as " + std::to_string(lit.u) + " without 'u', or convert with uint(...)";
      }
      if (want.is(Type::kDouble) && lit.type.is(Type::kInt)) {
        return "write the literal as " + std::to_string(lit.i) + ".0, or convert with double(...)";
      }
      return {};
    };
    std::string h = literal_hint(r, l.type);
    if (h.empty()) h = literal_hint(l, r.type);
    if (!h.empty()) return h;
    const bool numeric_l = l.type.is(Type::kInt) || l.type.is(Type::kUint) || l.type.is(Type::kDouble);
    const bool numeric_r = r.type.is(Type::kInt) || r.type.is(Type::kUint) || r.type.is(Type::kDouble);
    if (numeric_l && numeric_r && !(l.type == r.type)) {
      return "CEL has no implicit numeric conversions; convert one side with int(...), uint(...) or double(...)";
    }
    return {};
  }

  Status Arith(Node& n, Op int_op, Op uint_op, Op double_op) {
    const TypeInfo a = n.args[0]->type, b = n.args[1]->type;
    if (a == b && a.depth == 0) {
      if (a.kind == Type::kInt) return Set(n, int_op, a);
      if (a.kind == Type::kUint) return Set(n, uint_op, a);
      if (a.kind == Type::kDouble && double_op != Op::kNone) return Set(n, double_op, a);
    }
    return NoOverload(n, MixHint(n));
  }

  Status Compare(Node& n, int rel) {  // rel: 0 < 1 <= 2 > 3 >=
    const TypeInfo a = n.args[0]->type, b = n.args[1]->type;
    if (a == b && a.depth == 0) {
      Op base = Op::kNone;
      switch (a.kind) {
        case Type::kInt: base = Op::kLtInt; break;
        case Type::kUint: base = Op::kLtUint; break;
        case Type::kDouble: base = Op::kLtDouble; break;
        case Type::kString:
        case Type::kBytes: base = Op::kLtString; break;
        case Type::kBool: base = Op::kLtBool; break;
        default: break;
      }
      if (base != Op::kNone) return Set(n, static_cast<Op>(static_cast<int>(base) + rel), kBool);
    }
    return NoOverload(n, MixHint(n));
  }

  Status Equality(Node& n, bool eq) {
    const TypeInfo a = n.args[0]->type, b = n.args[1]->type;
    if (!Assignable(a, b)) return NoOverload(n, MixHint(n));
    Op op = eq ? Op::kEqAny : Op::kNeAny;
    if (a == b && a.depth == 0) {
      switch (a.kind) {
        case Type::kInt: op = eq ? Op::kEqInt : Op::kNeInt; break;
        case Type::kUint: op = eq ? Op::kEqUint : Op::kNeUint; break;
        case Type::kDouble: op = eq ? Op::kEqDouble : Op::kNeDouble; break;
        case Type::kString:
        case Type::kBytes: op = eq ? Op::kEqString : Op::kNeString; break;
        case Type::kBool: op = eq ? Op::kEqBool : Op::kNeBool; break;
        default: break;
      }
    }
    return Set(n, op, kBool);
  }

  Status Conversion(Node& n, TypeInfo to) {
    const TypeInfo a = n.args[0]->type;
    Op op = Op::kNone;
    if (a == to) {
      op = Op::kIdentity;
    } else if (a.depth == 0) {
      switch (to.kind) {
        case Type::kInt:
          op = a.kind == Type::kUint ? Op::kIntFromUint : a.kind == Type::kDouble ? Op::kIntFromDouble
             : a.kind == Type::kString ? Op::kIntFromString : Op::kNone;
          break;
        case Type::kUint:
          op = a.kind == Type::kInt ? Op::kUintFromInt : a.kind == Type::kDouble ? Op::kUintFromDouble
             : a.kind == Type::kString ? Op::kUintFromString : Op::kNone;
          break;
        case Type::kDouble:
          op = a.kind == Type::kInt ? Op::kDoubleFromInt : a.kind == Type::kUint ? Op::kDoubleFromUint
             : a.kind == Type::kString ? Op::kDoubleFromString : Op::kNone;
          break;
        case Type::kString:
          op = a.kind == Type::kInt ? Op::kStringFromInt : a.kind == Type::kUint ? Op::kStringFromUint
             : a.kind == Type::kDouble ? Op::kStringFromDouble : a.kind == Type::kBytes ? Op::kStringFromBytes
             : a.kind == Type::kBool ? Op::kStringFromBool : Op::kNone;
          break;
        case Type::kBytes: op = a.kind == Type::kString ? Op::kBytesFromString : Op::kNone; break;
        case Type::kBool: op = a.kind == Type::kString ? Op::kBoolFromString : Op::kNone; break;
        default: break;
      }
    }
    if (op == Op::kNone) return NoOverload(n);
    return Set(n, op, to);
  }

  Status Call(Node& n) {
    const std::string& f = n.name;
    const size_t argc = n.args.size();
    if (!n.member) {
      if (argc == 1) {
        const TypeInfo a = n.args[0]->type;
        if (f == "-_") {
          if (a.is(Type::kInt)) return Set(n, Op::kNegInt, a);
          if (a.is(Type::kDouble)) return Set(n, Op::kNegDouble, a);
          return NoOverload(n, a.is(Type::kUint) ? "uint values cannot be negated; convert with int(...)" : "");
        }
        if (f == "!_") return a.is(Type::kBool) ? Set(n, Op::kNot, kBool) : NoOverload(n);
        if (f == "int") return Conversion(n, kInt);
        if (f == "uint") return Conversion(n, kUint);
        if (f == "double") return Conversion(n, kDouble);
        if (f == "string") return Conversion(n, kString);
        if (f == "bytes") return Conversion(n, kBytes);
        if (f == "bool") return Conversion(n, kBool);
        if (f == "shard_hash") {
          if (a.is(Type::kInt)) return Set(n, Op::kHashInt, kUint);
          if (a.is(Type::kUint)) return Set(n, Op::kHashUint, kUint);
          if (a.is(Type::kString) || a.is(Type::kBytes)) return Set(n, Op::kHashBytes, kUint);
          return NoOverload(n);
        }
      }
      if (argc == 2) {
        const TypeInfo a = n.args[0]->type, b = n.args[1]->type;
        if (f == "_+_") {
          if (a == b && a.depth == 0 && a.kind == Type::kString) return Set(n, Op::kAddString, a);
          if (a == b && a.depth == 0 && a.kind == Type::kBytes) return Set(n, Op::kAddBytes, a);
          if (a.depth > 0 && b.depth > 0 && Assignable(a, b)) return Set(n, Op::kAddList, Join(a, b));
          return Arith(n, Op::kAddInt, Op::kAddUint, Op::kAddDouble);
        }
        if (f == "_-_") return Arith(n, Op::kSubInt, Op::kSubUint, Op::kSubDouble);
        if (f == "_*_") return Arith(n, Op::kMulInt, Op::kMulUint, Op::kMulDouble);
        if (f == "_/_") return Arith(n, Op::kDivInt, Op::kDivUint, Op::kDivDouble);
        if (f == "_%_") return Arith(n, Op::kModInt, Op::kModUint, Op::kNone);
        if (f == "_<_") return Compare(n, 0);
        if (f == "_<=_") return Compare(n, 1);
        if (f == "_>_") return Compare(n, 2);
        if (f == "_>=_") return Compare(n, 3);
        if (f == "_==_") return Equality(n, true);
        if (f == "_!=_") return Equality(n, false);
        if (f == "@in") {
          if (b.depth > 0 && Assignable(a, Elem(b))) return Set(n, Op::kIn, kBool);
          return NoOverload(n);
        }
        if (f == "_&&_" || f == "_||_") {
          if (a.is(Type::kBool) && b.is(Type::kBool)) return Set(n, f == "_&&_" ? Op::kAnd : Op::kOr, kBool);
          return NoOverload(n);
        }
      }
      if (argc == 3 && f == "_?_:_") {
        const TypeInfo c = n.args[0]->type, a = n.args[1]->type, b = n.args[2]->type;
        if (c.is(Type::kBool) && Assignable(a, b)) return Set(n, Op::kNone, Join(a, b));
        return NoOverload(n);
      }
      if (f == "size" && argc == 1) return Size(n);
      if (f == "size" || f == "int" || f == "uint" || f == "double" || f == "string" || f == "bytes" ||
          f == "bool" || f == "shard_hash") {
        return NoOverload(n);
      }
      return FormatCompileError(expr_, n.pos, "undeclared reference to '" + f + "'");
    }
    // Receiver calls: args[0] is the receiver.
    if (f == "size" && argc == 1) return Size(n);
    if ((f == "startsWith" || f == "endsWith" || f == "contains") && argc == 2) {
      if (n.args[0]->type.is(Type::kString) && n.args[1]->type.is(Type::kString)) {
        return Set(n, f == "startsWith" ? Op::kStartsWith : f == "endsWith" ? Op::kEndsWith : Op::kContains, kBool);
      }
      return NoOverload(n);
    }
    if (f == "size" || f == "startsWith" || f == "endsWith" || f == "contains") return NoOverload(n);
    return FormatCompileError(expr_, n.pos, "undeclared reference to '" + f + "'");
  }

  Status Size(Node& n) {
    const TypeInfo a = n.args[0]->type;
    if (a.is(Type::kString)) return Set(n, Op::kSizeString, kInt);
    if (a.is(Type::kBytes)) return Set(n, Op::kSizeBytes, kInt);
    if (a.depth > 0) return Set(n, Op::kSizeList, kInt);
    return NoOverload(n);
  }

  std::string_view expr_;
  const std::vector<std::pair<std::string, Type>>& vars_;
};

}  // namespace

Status Check(Node& root, std::string_view expr, const std::vector<std::pair<std::string, Type>>& vars) {
  return Checker(expr, vars).Visit(root);
}

}  // namespace shardvec::cel
