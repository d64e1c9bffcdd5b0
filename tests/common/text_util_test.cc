// UTF-8 validation and the display escaping of text someone else wrote.
#include "common/text_util.h"

#include <gtest/gtest.h>

#include <string>

namespace shardvec {
namespace {

TEST(TextUtilTest, FirstInvalidUtf8FollowsRfc3629) {
  // Well formed: ASCII, 2-, 3- and 4-byte sequences at each range's edges.
  for (const std::string ok : {"", "plain", "\xC2\x80", "\xDF\xBF", "\xE0\xA0\x80", "\xED\x9F\xBF", "\xEE\x80\x80",
                               "\xEF\xBF\xBF", "\xF0\x90\x80\x80", "\xF4\x8F\xBF\xBF", "caf\xC3\xA9 \xE2\x82\xAC"}) {
    EXPECT_FALSE(FirstInvalidUtf8(ok).has_value()) << ok;
  }
  EXPECT_FALSE(FirstInvalidUtf8(std::string("a\0b", 3)).has_value());  // NUL is UTF-8
  const std::vector<std::pair<std::string, size_t>> bad = {
      {"\x80", 0},                 // a lone continuation byte
      {"ab\xFF", 2},               // never in UTF-8
      {"\xC0\xAF", 0},             // overlong '/'
      {"\xC1\xBF", 0},             // overlong
      {"\xE0\x80\xAF", 0},         // overlong 3-byte
      {"\xF0\x80\x80\xAF", 0},     // overlong 4-byte
      {"x\xED\xA0\x80", 1},        // a UTF-16 surrogate (U+D800)
      {"\xF4\x90\x80\x80", 0},     // above U+10FFFF
      {"\xF5\x80\x80\x80", 0},
      {"ok\xE2\x82", 2},           // cut off at the end
      {"\xC3\x28", 0},             // a lead byte without its continuation
  };
  for (const auto& [text, offset] : bad) {
    EXPECT_EQ(FirstInvalidUtf8(text), offset) << text;
  }
}

TEST(TextUtilTest, CheckUtf8NamesTheFieldByteAndOffsetAndQuotesEscaped) {
  EXPECT_TRUE(CheckUtf8("fine", "id").ok());
  const Status st = CheckUtf8("a\x1b\xFFz", "--routing-values");
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), "--routing-values is not valid UTF-8 (byte 0xFF at offset 2): 'a\\x1b\\xffz'");
  const Status long_text = CheckUtf8(std::string(100, 'x') + "\xFF", "id");
  EXPECT_NE(long_text.message().find(std::string(80, 'x') + "...'"), std::string::npos) << long_text.message();
}

TEST(TextUtilTest, EscapeForDisplayEscapesEveryControlAndBadByteAndKeepsPrintableText) {
  EXPECT_EQ(EscapeForDisplay("caf\xC3\xA9 \xE2\x82\xAC \\ ok"), "caf\xC3\xA9 \xE2\x82\xAC \\ ok");
  EXPECT_EQ(EscapeForDisplay("\x1b[31mred\x07\r\n\t\x7f"), "\\x1b[31mred\\x07\\r\\n\\t\\x7f");
  EXPECT_EQ(EscapeForDisplay(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(EscapeForDisplay("\xC2\x9B" "31m \xC2\x85 \xC2\xA0"), "\\u009b31m \\u0085 \xC2\xA0");  // C1 only
  EXPECT_EQ(EscapeForDisplay("\xFF\xC3"), "\\xff\\xc3");
  // No byte below 0x20, no DEL, no C1 and nothing that is not UTF-8 survives, whatever the input.
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  all += "\xC2\x80\xC2\x9F";
  const std::string shown = EscapeForDisplay(all);
  EXPECT_FALSE(FirstInvalidUtf8(shown).has_value());
  for (char c : shown) EXPECT_FALSE(static_cast<unsigned char>(c) < 0x20 || c == 0x7F);
  EXPECT_EQ(shown.find("\xC2\x80"), std::string::npos);
  EXPECT_EQ(shown.find("\xC2\x9F"), std::string::npos);
}

}  // namespace
}  // namespace shardvec
