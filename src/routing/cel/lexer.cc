// CEL lexer: the token rules of cel-spec's grammar (the ANTLR lexer cel-cpp uses), including string
// escapes, raw and triple-quoted strings, and bytes literals.
#include "routing/cel/lexer.h"

#include <array>

namespace shardvec::cel {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsHex(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
int HexValue(char c) { return IsDigit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : c - 'A' + 10; }
bool IsIdentStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsIdentChar(char c) { return IsIdentStart(c) || IsDigit(c); }

// Words cel-spec reserves: using them as identifiers is a syntax error, as in cel-cpp.
constexpr std::array<std::string_view, 18> kReserved = {
    "as", "break", "const", "continue", "else", "for", "function", "if", "import",
    "let", "loop", "package", "namespace", "return", "var", "void", "while", "in"};

class Lexer {
 public:
  Lexer(std::string_view src, std::vector<Token>& out, LexError& err) : src_(src), out_(out), err_(err) {}

  bool Run() {
    while (true) {
      SkipSpaceAndComments();
      if (pos_ >= src_.size()) {
        out_.push_back({Tok::kEnd, static_cast<uint32_t>(pos_), {}});
        return true;
      }
      if (!Next()) return false;
    }
  }

 private:
  bool Fail(size_t at, std::string msg) {
    err_.message = std::move(msg);
    err_.pos = static_cast<uint32_t>(at);
    return false;
  }
  char Peek(size_t k = 0) const { return pos_ + k < src_.size() ? src_[pos_ + k] : '\0'; }
  void Emit(Tok kind, size_t start, std::string text = {}) {
    out_.push_back({kind, static_cast<uint32_t>(start), std::move(text)});
  }

  void SkipSpaceAndComments() {
    while (pos_ < src_.size()) {
      const char c = src_[pos_];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f') {
        ++pos_;
      } else if (c == '/' && Peek(1) == '/') {
        while (pos_ < src_.size() && src_[pos_] != '\n') ++pos_;
      } else {
        return;
      }
    }
  }

  bool Next() {
    const size_t start = pos_;
    const char c = src_[pos_];
    // String and bytes literals with their r/b prefixes (any order, any case).
    {
      size_t p = pos_;
      bool raw = false, bytes = false;
      for (int k = 0; k < 2 && p < src_.size(); ++k) {
        const char q = src_[p];
        if ((q == 'r' || q == 'R') && !raw) { raw = true; ++p; continue; }
        if ((q == 'b' || q == 'B') && !bytes) { bytes = true; ++p; continue; }
        break;
      }
      if (p < src_.size() && (src_[p] == '"' || src_[p] == '\'')) {
        pos_ = p;
        return Quoted(start, raw, bytes);
      }
    }
    if (IsIdentStart(c)) {
      while (pos_ < src_.size() && IsIdentChar(src_[pos_])) ++pos_;
      const std::string_view word = src_.substr(start, pos_ - start);
      if (word == "true") return Emit(Tok::kTrue, start), true;
      if (word == "false") return Emit(Tok::kFalse, start), true;
      if (word == "null") return Emit(Tok::kNull, start), true;
      if (word == "in") return Emit(Tok::kIn, start), true;
      for (std::string_view r : kReserved) {
        if (word == r) return Fail(start, "reserved identifier '" + std::string(word) + "'");
      }
      Emit(Tok::kIdent, start, std::string(word));
      return true;
    }
    if (IsDigit(c) || (c == '.' && IsDigit(Peek(1)))) return Number(start);
    ++pos_;
    switch (c) {
      case '(': Emit(Tok::kLParen, start); return true;
      case ')': Emit(Tok::kRParen, start); return true;
      case '[': Emit(Tok::kLBracket, start); return true;
      case ']': Emit(Tok::kRBracket, start); return true;
      case '{': Emit(Tok::kLBrace, start); return true;
      case '}': Emit(Tok::kRBrace, start); return true;
      case '.': Emit(Tok::kDot, start); return true;
      case ',': Emit(Tok::kComma, start); return true;
      case ':': Emit(Tok::kColon, start); return true;
      case '?': Emit(Tok::kQuestion, start); return true;
      case '+': Emit(Tok::kPlus, start); return true;
      case '-': Emit(Tok::kMinus, start); return true;
      case '*': Emit(Tok::kStar, start); return true;
      case '/': Emit(Tok::kSlash, start); return true;
      case '%': Emit(Tok::kPercent, start); return true;
      case '!':
        if (Peek() == '=') return ++pos_, Emit(Tok::kNe, start), true;
        Emit(Tok::kNot, start);
        return true;
      case '=':
        if (Peek() == '=') return ++pos_, Emit(Tok::kEq, start), true;
        break;
      case '<':
        if (Peek() == '=') return ++pos_, Emit(Tok::kLe, start), true;
        Emit(Tok::kLt, start);
        return true;
      case '>':
        if (Peek() == '=') return ++pos_, Emit(Tok::kGe, start), true;
        Emit(Tok::kGt, start);
        return true;
      case '&':
        if (Peek() == '&') return ++pos_, Emit(Tok::kAnd, start), true;
        break;
      case '|':
        if (Peek() == '|') return ++pos_, Emit(Tok::kOr, start), true;
        break;
      default: break;
    }
    const unsigned char uc = static_cast<unsigned char>(c);
    if (uc >= 0x80) return Fail(start, "unexpected character outside a string literal");
    if (uc < 0x20 || uc == 0x7f) return Fail(start, "unexpected control character");
    return Fail(start, std::string("unexpected character '") + c + "'");
  }

  // NUM_INT: DIGIT+ | 0x HEX+ ; NUM_UINT: the same then u/U ; NUM_FLOAT: DIGIT* . DIGIT+ EXP? | DIGIT+ EXP.
  bool Number(size_t start) {
    if (src_[pos_] == '0' && (Peek(1) == 'x' || Peek(1) == 'X') && IsHex(Peek(2))) {
      pos_ += 2;
      while (pos_ < src_.size() && IsHex(src_[pos_])) ++pos_;
      std::string text(src_.substr(start, pos_ - start));
      if (Peek() == 'u' || Peek() == 'U') return ++pos_, Emit(Tok::kUint, start, std::move(text)), true;
      Emit(Tok::kInt, start, std::move(text));
      return true;
    }
    while (pos_ < src_.size() && IsDigit(src_[pos_])) ++pos_;
    bool is_double = false;
    if (Peek() == '.' && IsDigit(Peek(1))) {
      is_double = true;
      ++pos_;
      while (pos_ < src_.size() && IsDigit(src_[pos_])) ++pos_;
    }
    if (Peek() == 'e' || Peek() == 'E') {
      size_t p = pos_ + 1;
      if (p < src_.size() && (src_[p] == '+' || src_[p] == '-')) ++p;
      if (p < src_.size() && IsDigit(src_[p])) {
        is_double = true;
        pos_ = p;
        while (pos_ < src_.size() && IsDigit(src_[pos_])) ++pos_;
      }
    }
    std::string text(src_.substr(start, pos_ - start));
    if (is_double) return Emit(Tok::kDouble, start, std::move(text)), true;
    if (Peek() == 'u' || Peek() == 'U') return ++pos_, Emit(Tok::kUint, start, std::move(text)), true;
    Emit(Tok::kInt, start, std::move(text));
    return true;
  }

  // pos_ is at the opening quote.
  bool Quoted(size_t start, bool raw, bool bytes) {
    const char q = src_[pos_];
    const bool triple = Peek(1) == q && Peek(2) == q;
    pos_ += triple ? 3 : 1;
    const char* what = bytes ? "bytes literal" : "string literal";
    std::string out;
    while (true) {
      if (pos_ >= src_.size()) return Fail(start, std::string("unterminated ") + what);
      const char c = src_[pos_];
      if (c == q && (!triple || (Peek(1) == q && Peek(2) == q))) {
        pos_ += triple ? 3 : 1;
        break;
      }
      if (!triple && (c == '\n' || c == '\r')) return Fail(start, std::string("unterminated ") + what);
      if (c == '\\' && raw) {
        // In raw literals a backslash is literal, but still keeps an escaped quote inside the literal.
        out.push_back(c);
        ++pos_;
        if (pos_ < src_.size() && (src_[pos_] == q || src_[pos_] == '\\')) out.push_back(src_[pos_++]);
        continue;
      }
      if (c == '\\') {
        if (!Escape(start, bytes, out)) return false;
        continue;
      }
      out.push_back(c);
      ++pos_;
    }
    if (!bytes && !IsValidUtf8(out)) return Fail(start, "invalid UTF-8 in string literal");
    Emit(bytes ? Tok::kBytes : Tok::kString, start, std::move(out));
    return true;
  }

  // pos_ is at the backslash.
  bool Escape(size_t start, bool bytes, std::string& out) {
    const size_t at = pos_;
    ++pos_;
    if (pos_ >= src_.size()) return Fail(start, "unterminated escape sequence");
    const char e = src_[pos_++];
    switch (e) {
      case 'a': out.push_back('\a'); return true;
      case 'b': out.push_back('\b'); return true;
      case 'f': out.push_back('\f'); return true;
      case 'n': out.push_back('\n'); return true;
      case 'r': out.push_back('\r'); return true;
      case 't': out.push_back('\t'); return true;
      case 'v': out.push_back('\v'); return true;
      case '\\': case '\'': case '"': case '`': case '?': out.push_back(e); return true;
      default: break;
    }
    uint32_t value = 0;
    if (e == 'x' || e == 'X' || e == 'u' || e == 'U') {
      const int digits = (e == 'x' || e == 'X') ? 2 : e == 'u' ? 4 : 8;
      if (bytes && (e == 'u' || e == 'U')) return Fail(at, "\\u escapes are not allowed in bytes literals");
      for (int k = 0; k < digits; ++k) {
        if (pos_ >= src_.size() || !IsHex(src_[pos_])) return Fail(at, "invalid escape sequence");
        value = value * 16 + static_cast<uint32_t>(HexValue(src_[pos_++]));
      }
      if (e == 'u' || e == 'U') {
        if ((value >= 0xD800 && value <= 0xDFFF) || value > 0x10FFFF) return Fail(at, "invalid Unicode escape");
      }
    } else if (e >= '0' && e <= '3') {
      value = static_cast<uint32_t>(e - '0');
      for (int k = 0; k < 2; ++k) {
        if (pos_ >= src_.size() || src_[pos_] < '0' || src_[pos_] > '7') return Fail(at, "invalid escape sequence");
        value = value * 8 + static_cast<uint32_t>(src_[pos_++] - '0');
      }
    } else {
      return Fail(at, "invalid escape sequence");
    }
    // \x and octal escapes are raw bytes in bytes literals and code points in strings.
    if (bytes && value <= 0xFF) {
      out.push_back(static_cast<char>(value));
    } else {
      AppendUtf8(value, out);
    }
    return true;
  }

  std::string_view src_;
  std::vector<Token>& out_;
  LexError& err_;
  size_t pos_ = 0;
};

}  // namespace

void AppendUtf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool IsValidUtf8(std::string_view s) { return FirstInvalidUtf8(s) == std::string_view::npos; }

size_t FirstInvalidUtf8(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) { ++i; continue; }
    size_t len = 0;
    uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
    else return i;
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      const unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return i;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::string_view::npos;
}

int64_t CodePointCount(std::string_view s) {
  int64_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

bool Lex(std::string_view expr, std::vector<Token>& tokens, LexError& error) {
  tokens.clear();
  if (const size_t bad = FirstInvalidUtf8(expr); bad != std::string_view::npos) {
    error = {"invalid UTF-8 in the expression", static_cast<uint32_t>(bad)};
    return false;
  }
  return Lexer(expr, tokens, error).Run();
}

}  // namespace shardvec::cel
