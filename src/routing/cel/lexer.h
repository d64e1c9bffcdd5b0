// Tokens of CEL source text (cel-spec lexical grammar). String and bytes literals are decoded here,
// numbers are kept as text so the parser can fold a leading '-' into an int literal the way cel-cpp does.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "shardvec/status.h"

namespace shardvec::cel {

enum class Tok : uint8_t {
  kEnd, kIdent, kInt, kUint, kDouble, kString, kBytes, kTrue, kFalse, kNull,
  kLParen, kRParen, kLBracket, kRBracket, kLBrace, kRBrace, kDot, kComma, kColon, kQuestion,
  kPlus, kMinus, kStar, kSlash, kPercent, kNot, kAnd, kOr,
  kEq, kNe, kLt, kLe, kGt, kGe, kIn,
};

struct Token {
  Tok kind = Tok::kEnd;
  uint32_t pos = 0;   // byte offset in the expression
  std::string text;   // identifier name, number text (without 'u'), or decoded string/bytes
};

// Expressions longer than this are refused before lexing (bounds work and memory for hostile input).
inline constexpr size_t kMaxExprBytes = 16384;

// A lexing error: what and where (byte offset).
struct LexError {
  std::string message;
  uint32_t pos = 0;
};

// Splits `expr` into tokens (ending with kEnd). On error returns false and fills `error`.
bool Lex(std::string_view expr, std::vector<Token>& tokens, LexError& error);

// Appends the UTF-8 encoding of code point `cp` (assumed valid) to `out`.
void AppendUtf8(uint32_t cp, std::string& out);
// True when `s` is well-formed UTF-8 (no overlongs, surrogates or code points above U+10FFFF).
bool IsValidUtf8(std::string_view s);
// Byte offset of the first malformed sequence, or npos.
size_t FirstInvalidUtf8(std::string_view s);
// Number of code points in valid UTF-8 `s` (counts lead bytes).
int64_t CodePointCount(std::string_view s);

}  // namespace shardvec::cel
