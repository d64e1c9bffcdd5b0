#include "common/text_util.h"

#include <fmt/format.h>

namespace shardvec {
namespace {

// The length of the well-formed UTF-8 sequence at text[i], or 0 when the byte there starts none.
size_t Utf8SequenceLength(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char b0 = byte(i);
  if (b0 < 0x80) return 1;
  size_t length = 0;
  unsigned char low = 0x80, high = 0xBF;  // the allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    length = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    length = 3;
    if (b0 == 0xE0) low = 0xA0;   // no overlong 3-byte forms
    if (b0 == 0xED) high = 0x9F;  // no UTF-16 surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    length = 4;
    if (b0 == 0xF0) low = 0x90;   // no overlong 4-byte forms
    if (b0 == 0xF4) high = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;  // a continuation byte, an overlong 2-byte lead (C0, C1) or F5..FF
  }
  if (text.size() - i < length) return 0;
  if (byte(i + 1) < low || byte(i + 1) > high) return 0;
  for (size_t k = 2; k < length; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return length;
}

}  // namespace

std::string AsciiLower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::optional<size_t> FirstInvalidUtf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const size_t length = Utf8SequenceLength(text, i);
    if (length == 0) return i;
    i += length;
  }
  return std::nullopt;
}

Status CheckUtf8(std::string_view text, std::string_view what) {
  const std::optional<size_t> bad = FirstInvalidUtf8(text);
  if (!bad) return Status::OK();
  constexpr size_t kMaxQuoted = 80;
  const std::string quoted = EscapeForDisplay(text.substr(0, kMaxQuoted));
  return Status::InvalidArgument(fmt::format("{} is not valid UTF-8 (byte 0x{:02X} at offset {}): '{}{}'", what,
                                             static_cast<unsigned char>(text[*bad]), *bad, quoted,
                                             text.size() > kMaxQuoted ? "..." : ""));
}

std::string EscapeForDisplay(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const auto b0 = static_cast<unsigned char>(text[i]);
    const size_t length = Utf8SequenceLength(text, i);
    if (length == 0) {
      out += fmt::format("\\x{:02x}", b0);
      i += 1;
    } else if (length == 1 && (b0 < 0x20 || b0 == 0x7F)) {
      out += b0 == '\n' ? "\\n" : b0 == '\r' ? "\\r" : b0 == '\t' ? "\\t" : fmt::format("\\x{:02x}", b0);
      i += 1;
    } else if (length == 2 && b0 == 0xC2 && static_cast<unsigned char>(text[i + 1]) <= 0x9F) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned char>(text[i + 1]));  // C1: U+0080..U+009F
      i += 2;
    } else {
      out.append(text.substr(i, length));
      i += length;
    }
  }
  return out;
}

}  // namespace shardvec
