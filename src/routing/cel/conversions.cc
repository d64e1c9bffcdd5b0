// Number formatting and parsing for CEL's conversion functions (see conversions.h).
#include "routing/cel/conversions.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string>

namespace shardvec::cel {
namespace {

bool IsAsciiSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsAsciiSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsAsciiSpace(s.back())) s.remove_suffix(1);
  return s;
}

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

size_t FormatDouble(double v, char* buf) {
  if (std::isnan(v)) {
    // cel-cpp prints the sign bit of NaN (0.0/0.0 is -nan on x86).
    const char* text = std::signbit(v) ? "-nan" : "nan";
    const size_t n = std::char_traits<char>::length(text);
    std::char_traits<char>::copy(buf, text, n);
    return n;
  }
  if (std::isinf(v)) {
    const char* text = v < 0 ? "-inf" : "inf";
    const size_t n = std::char_traits<char>::length(text);
    std::char_traits<char>::copy(buf, text, n);
    return n;
  }
  // Shortest round-trip digits; the exponent decides between fixed and scientific like %g (P = 6).
  auto sci = std::to_chars(buf, buf + kNumberBufSize, v, std::chars_format::scientific);
  const std::string_view text(buf, static_cast<size_t>(sci.ptr - buf));
  const size_t e = text.find('e');
  int exponent = 0;
  std::from_chars(text.data() + e + (text[e + 1] == '+' ? 2 : 1), text.data() + text.size(), exponent);
  if (exponent < -4 || exponent >= 6) return text.size();
  auto fixed = std::to_chars(buf, buf + kNumberBufSize, v, std::chars_format::fixed);
  return static_cast<size_t>(fixed.ptr - buf);
}

size_t FormatInt(int64_t v, char* buf) {
  return static_cast<size_t>(std::to_chars(buf, buf + kNumberBufSize, v).ptr - buf);
}

size_t FormatUint(uint64_t v, char* buf) {
  return static_cast<size_t>(std::to_chars(buf, buf + kNumberBufSize, v).ptr - buf);
}

bool ParseIntText(std::string_view text, int64_t& out) {
  text = Trim(text);
  bool negative = false;
  if (!text.empty() && (text[0] == '+' || text[0] == '-')) {
    negative = text[0] == '-';
    text.remove_prefix(1);
  }
  if (!AllDigits(text)) return false;
  uint64_t magnitude = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), magnitude);
  if (ec != std::errc() || p != text.data() + text.size()) return false;
  if (negative) {
    if (magnitude > (uint64_t{1} << 63)) return false;
    out = static_cast<int64_t>(0 - magnitude);
  } else {
    if (magnitude > static_cast<uint64_t>(INT64_MAX)) return false;
    out = static_cast<int64_t>(magnitude);
  }
  return true;
}

bool ParseUintText(std::string_view text, uint64_t& out) {
  text = Trim(text);
  if (!text.empty() && text[0] == '+') text.remove_prefix(1);
  if (!AllDigits(text)) return false;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && p == text.data() + text.size();
}

bool ParseDoubleText(std::string_view text, double& out) {
  text = Trim(text);
  if (text.empty() || text.size() > 4096) return false;
  char small[128];
  std::string big;
  const char* cstr = nullptr;
  if (text.size() < sizeof(small)) {
    std::char_traits<char>::copy(small, text.data(), text.size());
    small[text.size()] = '\0';
    cstr = small;
  } else {
    big.assign(text);  // rare: very long numeric text
    cstr = big.c_str();
  }
  if (std::char_traits<char>::length(cstr) != text.size()) return false;  // embedded NUL
  char* end = nullptr;
  out = std::strtod(cstr, &end);
  return end == cstr + text.size();
}

bool ParseBoolText(std::string_view text, bool& out) {
  if (text == "1" || text == "t" || text == "true" || text == "TRUE" || text == "True") {
    out = true;
    return true;
  }
  if (text == "0" || text == "f" || text == "false" || text == "FALSE" || text == "False") {
    out = false;
    return true;
  }
  return false;
}

}  // namespace shardvec::cel
