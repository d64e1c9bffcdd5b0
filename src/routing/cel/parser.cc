// CEL parser. Mirrors the ANTLR grammar cel-cpp uses, including its quirks that change meaning:
// a single '-' directly before a number is part of the literal (so -9223372036854775808 is valid),
// and runs of '!' or '-' cancel in pairs (`--u` is `u`, `!!i` is `i`).
#include "routing/cel/parser.h"

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <limits>
#include <vector>

#include "routing/cel/lexer.h"

namespace shardvec::cel {
namespace {

class Parser {
 public:
  Parser(std::string_view expr, std::vector<Token> tokens) : expr_(expr), toks_(std::move(tokens)) {}

  Result<std::unique_ptr<Node>> Run() {
    auto node = Expr();
    if (!ok()) return status_;
    if (Cur().kind != Tok::kEnd) return Error(Cur().pos, "syntax error: unexpected " + Describe(Cur()));
    return node;
  }

 private:
  bool ok() const { return status_.ok(); }
  const Token& Cur() const { return toks_[i_]; }
  const Token& Ahead(size_t k) const { return toks_[std::min(i_ + k, toks_.size() - 1)]; }
  bool Accept(Tok kind) {
    if (Cur().kind != kind) return false;
    ++i_;
    return true;
  }

  Status Error(uint32_t pos, std::string_view what) {
    if (status_.ok()) status_ = FormatCompileError(expr_, pos, what);
    return status_;
  }
  std::unique_ptr<Node> Fail(uint32_t pos, std::string_view what) {
    (void)Error(pos, what);
    return nullptr;
  }
  static std::string Describe(const Token& t) {
    switch (t.kind) {
      case Tok::kEnd: return "end of expression";
      case Tok::kIdent: return "'" + t.text + "'";
      case Tok::kInt: case Tok::kUint: case Tok::kDouble: return "number";
      case Tok::kString: return "string";
      case Tok::kBytes: return "bytes";
      default: return "token";
    }
  }
  bool Expect(Tok kind, std::string_view what) {
    if (Accept(kind)) return true;
    (void)Error(Cur().pos, "syntax error: expected " + std::string(what) + ", found " + Describe(Cur()));
    return false;
  }

  // Builds a call node; its depth is one more than its deepest argument.
  std::unique_ptr<Node> Call(std::string name, uint32_t pos, std::vector<std::unique_ptr<Node>> args,
                             bool member = false) {
    auto n = std::make_unique<Node>();
    n->kind = Node::Kind::kCall;
    n->name = std::move(name);
    n->pos = pos;
    n->member = member;
    int depth = 0;
    for (const auto& a : args) depth = std::max(depth, a->depth);
    n->depth = depth + 1;
    n->args = std::move(args);
    if (n->depth > kMaxTreeDepth) {
      return Fail(pos, "expression is nested too deeply (more than " + std::to_string(kMaxTreeDepth) + " levels)");
    }
    return n;
  }
  std::unique_ptr<Node> Binary(std::string name, uint32_t pos, std::unique_ptr<Node> a, std::unique_ptr<Node> b) {
    std::vector<std::unique_ptr<Node>> args;
    args.push_back(std::move(a));
    args.push_back(std::move(b));
    return Call(std::move(name), pos, std::move(args));
  }

  // Guards the recursion of the grammar: each nested Expr() counts one level.
  struct Nest {
    Parser& p;
    explicit Nest(Parser& parser) : p(parser) { ++p.nesting_; }
    ~Nest() { --p.nesting_; }
  };

  std::unique_ptr<Node> Expr() {
    Nest nest(*this);
    if (nesting_ > kMaxNesting) {
      return Fail(Cur().pos, "expression is nested too deeply (more than " + std::to_string(kMaxNesting) +
                                 " levels of parentheses, lists or calls)");
    }
    auto cond = Or();
    if (!ok()) return nullptr;
    if (Cur().kind != Tok::kQuestion) return cond;
    const uint32_t pos = Cur().pos;
    ++i_;
    auto yes = Or();
    if (!ok() || !Expect(Tok::kColon, "':'")) return nullptr;
    auto no = Expr();  // right-associative
    if (!ok()) return nullptr;
    std::vector<std::unique_ptr<Node>> args;
    args.push_back(std::move(cond));
    args.push_back(std::move(yes));
    args.push_back(std::move(no));
    return Call("_?_:_", pos, std::move(args));
  }

  std::unique_ptr<Node> Or() {
    auto lhs = And();
    while (ok() && Cur().kind == Tok::kOr) {
      const uint32_t pos = Cur().pos;
      ++i_;
      auto rhs = And();
      if (!ok()) return nullptr;
      lhs = Binary("_||_", pos, std::move(lhs), std::move(rhs));
    }
    return ok() ? std::move(lhs) : nullptr;
  }

  std::unique_ptr<Node> And() {
    auto lhs = Relation();
    while (ok() && Cur().kind == Tok::kAnd) {
      const uint32_t pos = Cur().pos;
      ++i_;
      auto rhs = Relation();
      if (!ok()) return nullptr;
      lhs = Binary("_&&_", pos, std::move(lhs), std::move(rhs));
    }
    return ok() ? std::move(lhs) : nullptr;
  }

  static const char* RelationName(Tok t) {
    switch (t) {
      case Tok::kEq: return "_==_";
      case Tok::kNe: return "_!=_";
      case Tok::kLt: return "_<_";
      case Tok::kLe: return "_<=_";
      case Tok::kGt: return "_>_";
      case Tok::kGe: return "_>=_";
      case Tok::kIn: return "@in";
      default: return nullptr;
    }
  }

  std::unique_ptr<Node> Relation() {
    auto lhs = Addition();
    while (ok()) {
      const char* name = RelationName(Cur().kind);
      if (!name) break;
      const uint32_t pos = Cur().pos;
      ++i_;
      auto rhs = Addition();
      if (!ok()) return nullptr;
      lhs = Binary(name, pos, std::move(lhs), std::move(rhs));
    }
    return ok() ? std::move(lhs) : nullptr;
  }

  std::unique_ptr<Node> Addition() {
    auto lhs = Multiplication();
    while (ok() && (Cur().kind == Tok::kPlus || Cur().kind == Tok::kMinus)) {
      const char* name = Cur().kind == Tok::kPlus ? "_+_" : "_-_";
      const uint32_t pos = Cur().pos;
      ++i_;
      auto rhs = Multiplication();
      if (!ok()) return nullptr;
      lhs = Binary(name, pos, std::move(lhs), std::move(rhs));
    }
    return ok() ? std::move(lhs) : nullptr;
  }

  std::unique_ptr<Node> Multiplication() {
    auto lhs = Unary();
    while (ok() && (Cur().kind == Tok::kStar || Cur().kind == Tok::kSlash || Cur().kind == Tok::kPercent)) {
      const char* name = Cur().kind == Tok::kStar ? "_*_" : Cur().kind == Tok::kSlash ? "_/_" : "_%_";
      const uint32_t pos = Cur().pos;
      ++i_;
      auto rhs = Unary();
      if (!ok()) return nullptr;
      lhs = Binary(name, pos, std::move(lhs), std::move(rhs));
    }
    return ok() ? std::move(lhs) : nullptr;
  }

  std::unique_ptr<Node> Unary() {
    const Tok t = Cur().kind;
    const uint32_t pos = Cur().pos;
    if (t == Tok::kNot) {
      size_t n = 0;
      while (Accept(Tok::kNot)) ++n;
      auto operand = Member();
      if (!ok()) return nullptr;
      if (n % 2 == 0) return operand;
      std::vector<std::unique_ptr<Node>> args;
      args.push_back(std::move(operand));
      return Call("!_", pos, std::move(args));
    }
    if (t == Tok::kMinus) {
      // One '-' before a number is the literal's sign (cel-spec's grammar); more are negations.
      // We are at the first '-' of the run, so a number right after it means exactly one '-'.
      if (Ahead(1).kind == Tok::kInt || Ahead(1).kind == Tok::kDouble) return Member();
      size_t n = 0;
      while (Accept(Tok::kMinus)) ++n;
      if (Cur().kind == Tok::kMinus || Cur().kind == Tok::kNot) return Fail(Cur().pos, "syntax error: unexpected token");
      auto operand = MemberUnsigned();
      if (!ok()) return nullptr;
      if (n % 2 == 0) return operand;
      std::vector<std::unique_ptr<Node>> args;
      args.push_back(std::move(operand));
      return Call("-_", pos, std::move(args));
    }
    return Member();
  }

  // A member expression whose primary may not carry a sign (after a run of '-').
  std::unique_ptr<Node> MemberUnsigned() {
    if (Cur().kind == Tok::kMinus) return Fail(Cur().pos, "syntax error: unexpected '-'");
    return Member();
  }

  std::unique_ptr<Node> Member() {
    auto node = Primary();
    while (ok()) {
      if (Cur().kind == Tok::kDot) {
        const uint32_t dot = Cur().pos;
        ++i_;
        if (Cur().kind != Tok::kIdent) return Fail(Cur().pos, "syntax error: expected a name after '.'");
        std::string name = Cur().text;
        const uint32_t name_pos = Cur().pos;
        ++i_;
        if (Cur().kind != Tok::kLParen) {
          return Fail(dot, "field selection '." + name + "' is not supported");
        }
        const uint32_t paren = Cur().pos;
        ++i_;
        std::vector<std::unique_ptr<Node>> args;
        args.push_back(std::move(node));
        if (!Arguments(args)) return nullptr;
        (void)name_pos;
        node = Call(std::move(name), paren, std::move(args), /*member=*/true);
      } else if (Cur().kind == Tok::kLBracket) {
        return Fail(Cur().pos, "indexing with [] is not supported");
      } else if (Cur().kind == Tok::kLBrace) {
        return Fail(Cur().pos, "message construction is not supported");
      } else {
        break;
      }
    }
    return ok() ? std::move(node) : nullptr;
  }

  // After '(': comma-separated expressions, then ')'.
  bool Arguments(std::vector<std::unique_ptr<Node>>& args) {
    if (Accept(Tok::kRParen)) return true;
    while (true) {
      auto arg = Expr();
      if (!ok()) return false;
      args.push_back(std::move(arg));
      if (Accept(Tok::kRParen)) return true;
      if (!Expect(Tok::kComma, "',' or ')'")) return false;
    }
  }

  std::unique_ptr<Node> Literal(Type type, uint32_t pos) {
    auto n = std::make_unique<Node>();
    n->kind = Node::Kind::kLiteral;
    n->type = TypeInfo{type, 0};
    n->pos = pos;
    return n;
  }

  static bool ParseU64(std::string_view text, uint64_t& out) {
    int base = 10;
    if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
      base = 16;
      text.remove_prefix(2);
    }
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out, base);
    return ec == std::errc() && p == text.data() + text.size();
  }

  std::unique_ptr<Node> Number(bool negative, uint32_t pos) {
    const Token& t = Cur();
    ++i_;
    if (t.kind == Tok::kDouble) {
      std::string text = negative ? "-" + t.text : t.text;
      auto n = Literal(Type::kDouble, pos);
      // strtod: correctly rounded, and overflow gives inf as in cel-cpp (1e309 -> inf).
      n->d = std::strtod(text.c_str(), nullptr);
      return n;
    }
    uint64_t v = 0;
    const bool hex = t.text.size() > 1 && (t.text[1] == 'x' || t.text[1] == 'X');
    const bool parsed = ParseU64(t.text, v);
    if (t.kind == Tok::kUint) {
      if (!parsed) return Fail(pos, "invalid uint literal");
      auto n = Literal(Type::kUint, pos);
      n->u = v;
      return n;
    }
    const uint64_t limit = negative ? (uint64_t{1} << 63) : static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    if (!parsed || v > limit) return Fail(pos, hex ? "invalid hex int literal" : "invalid int literal");
    auto n = Literal(Type::kInt, pos);
    n->i = negative ? static_cast<int64_t>(0 - v) : static_cast<int64_t>(v);
    return n;
  }

  std::unique_ptr<Node> Primary() {
    const Token& t = Cur();
    const uint32_t pos = t.pos;
    switch (t.kind) {
      case Tok::kMinus:
        if (Ahead(1).kind == Tok::kInt || Ahead(1).kind == Tok::kDouble) {
          ++i_;
          return Number(true, pos);
        }
        return Fail(pos, "syntax error: unexpected '-'");
      case Tok::kInt:
      case Tok::kUint:
      case Tok::kDouble: return Number(false, pos);
      case Tok::kString:
      case Tok::kBytes: {
        auto n = Literal(t.kind == Tok::kString ? Type::kString : Type::kBytes, pos);
        n->s = t.text;
        ++i_;
        return n;
      }
      case Tok::kTrue:
      case Tok::kFalse: {
        auto n = Literal(Type::kBool, pos);
        n->b = t.kind == Tok::kTrue;
        ++i_;
        return n;
      }
      case Tok::kNull: ++i_; return Literal(Type::kNull, pos);
      case Tok::kDot:
        // A leading '.' names the root scope: `.x` is `x`.
        if (Ahead(1).kind != Tok::kIdent) return Fail(pos, "syntax error: expected a name after '.'");
        ++i_;
        return Primary();
      case Tok::kIdent: {
        std::string name = t.text;
        ++i_;
        if (Cur().kind == Tok::kLParen) {
          const uint32_t paren = Cur().pos;
          ++i_;
          Nest nest(*this);
          std::vector<std::unique_ptr<Node>> args;
          if (!Arguments(args)) return nullptr;
          return Call(std::move(name), paren, std::move(args));
        }
        auto n = std::make_unique<Node>();
        n->kind = Node::Kind::kIdent;
        n->name = std::move(name);
        n->pos = pos;
        return n;
      }
      case Tok::kLParen: {
        ++i_;
        auto inner = Expr();
        if (!ok() || !Expect(Tok::kRParen, "')'")) return nullptr;
        return inner;
      }
      case Tok::kLBracket: {
        ++i_;
        auto n = std::make_unique<Node>();
        n->kind = Node::Kind::kList;
        n->pos = pos;
        // cel-cpp's grammar accepts "[,]" as the empty list.
        if (Cur().kind == Tok::kComma && Ahead(1).kind == Tok::kRBracket) i_ += 1;
        while (!Accept(Tok::kRBracket)) {
          auto elem = Expr();
          if (!ok()) return nullptr;
          n->depth = std::max(n->depth, elem->depth + 1);
          n->args.push_back(std::move(elem));
          if (Accept(Tok::kRBracket)) break;
          if (!Expect(Tok::kComma, "',' or ']'")) return nullptr;
        }
        if (n->depth > kMaxTreeDepth) return Fail(pos, "expression is nested too deeply");
        return n;
      }
      case Tok::kLBrace: return Fail(pos, "maps are not supported");
      case Tok::kEnd: return Fail(pos, "syntax error: unexpected end of expression");
      default: return Fail(pos, "syntax error: unexpected " + Describe(t));
    }
  }

  std::string_view expr_;
  std::vector<Token> toks_;
  size_t i_ = 0;
  int nesting_ = 0;
  Status status_;
};

}  // namespace

Status FormatCompileError(std::string_view expr, uint32_t pos, std::string_view what, std::string_view hint) {
  pos = std::min<uint32_t>(pos, static_cast<uint32_t>(expr.size()));
  const size_t nl = expr.substr(0, pos).rfind('\n');
  const size_t line_start = nl == std::string_view::npos ? 0 : nl + 1;
  size_t line_end = expr.find('\n', pos);
  if (line_end == std::string_view::npos) line_end = expr.size();
  int64_t line = 1;
  for (size_t k = 0; k < line_start; ++k) line += expr[k] == '\n';
  const int64_t column = CodePointCount(expr.substr(line_start, pos - line_start)) + 1;
  std::string msg = "cel_expr: " + std::string(what) + " at ";
  if (line > 1) msg += "line " + std::to_string(line) + ", ";
  msg += "column " + std::to_string(column);
  std::string_view shown = expr.substr(line_start, line_end - line_start);
  // Keep the message readable for very long expressions: show at most 160 bytes around the caret.
  int64_t caret = column - 1;
  if (shown.size() > 160) {
    size_t from = pos - line_start > 80 ? pos - line_start - 80 : 0;
    while (from > 0 && (static_cast<unsigned char>(shown[from]) & 0xC0) == 0x80) --from;
    size_t to = std::min(shown.size(), from + 160);
    while (to < shown.size() && (static_cast<unsigned char>(shown[to]) & 0xC0) == 0x80) ++to;
    caret -= CodePointCount(shown.substr(0, from));
    shown = shown.substr(from, to - from);
  }
  msg += "\n | " + std::string(shown) + "\n | " + std::string(static_cast<size_t>(caret), '.') + "^";
  if (!hint.empty()) msg += " (" + std::string(hint) + ")";
  return Status::InvalidArgument(std::move(msg));
}

Result<std::unique_ptr<Node>> Parse(std::string_view expr) {
  if (expr.size() > kMaxExprBytes) {
    return Status::InvalidArgument("cel_expr: expression is " + std::to_string(expr.size()) +
                                   " bytes long; the limit is " + std::to_string(kMaxExprBytes));
  }
  std::vector<Token> tokens;
  LexError error;
  if (!Lex(expr, tokens, error)) return FormatCompileError(expr, error.pos, error.message);
  return Parser(expr, std::move(tokens)).Run();
}

}  // namespace shardvec::cel
