// ReadablePayloadJson: whatever text a shard stores as a payload, a reader hands back one valid JSON
// object, bounded in depth; SafeJsonDump never throws.
#include "common/json_text.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

namespace shardvec {
namespace {
using nlohmann::json;

json Raw(const std::string& text) { return json{{std::string(kRawPayloadKey), text}}; }

TEST(JsonTextTest, ReadablePayloadJsonKeepsJsonObjectsAsStored) {
  for (const std::string ok : {"{}", "{\"b\": 1, \"a\": [1, {\"c\": null}]}", " {\"x\":\"\xC2\x9B\"} ",
                               "{\"e\": \"\\u001b\"}"}) {
    EXPECT_EQ(ReadablePayloadJson(ok), ok);
  }
  std::string nested = std::string(kMaxJsonNesting - 1, '[') + std::string(kMaxJsonNesting - 1, ']');
  EXPECT_EQ(ReadablePayloadJson("{\"a\": " + nested + "}"), "{\"a\": " + nested + "}");
}

TEST(JsonTextTest, ReadablePayloadJsonWrapsEverythingElseAsRawText) {
  const std::string deep = std::string(300000, '[');
  const std::string deep_object = "{\"a\": " + std::string(kMaxJsonNesting, '[') + std::string(kMaxJsonNesting, ']') + "}";
  for (const std::string text : {std::string("not json"), std::string(""), std::string("[1, 2]"), std::string("\"s\""),
                                 std::string("7"), std::string("null"), std::string("{\"a\": 1} trailing"),
                                 std::string("{\"a\": \"\x1b[2J\"}"), std::string("{\"a\": 1}\0x", 10), deep,
                                 deep_object}) {
    const std::string out = ReadablePayloadJson(text);
    ASSERT_TRUE(json::accept(out)) << out.substr(0, 100);
    EXPECT_EQ(json::parse(out), Raw(text)) << text.substr(0, 100);
  }
  // Bytes that are not UTF-8 become U+FFFD; the result is still one valid JSON object.
  const std::string out = ReadablePayloadJson("{\"a\": \"\xFF\"}");
  ASSERT_TRUE(json::accept(out)) << out;
  EXPECT_EQ(json::parse(out), Raw("{\"a\": \"\xEF\xBF\xBD\"}"));
}

TEST(JsonTextTest, SafeJsonDumpReplacesBytesThatAreNotUtf8) {
  EXPECT_EQ(SafeJsonDump(json{{"k", "a\xFFz"}}), "{\"k\":\"a\xEF\xBF\xBDz\"}");
  EXPECT_EQ(SafeJsonDump(json{{"k", "\x1b"}}), "{\"k\":\"\\u001b\"}");
}

}  // namespace
}  // namespace shardvec
