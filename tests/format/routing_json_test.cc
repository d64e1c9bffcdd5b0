#include "format/routing_json.h"

#include <gtest/gtest.h>

namespace shardvec {
namespace {

TEST(RoutingJsonTest, TokensRoundTripWithBytesAsHex) {
  const std::vector<RoutingValue> tokens = {int64_t{-3}, std::string("eu"), Bytes{std::string("\x00\xff", 2)},
                                            uint64_t{18446744073709551615ULL}};
  const nlohmann::json json = RoutingValuesToJson(tokens);
  EXPECT_EQ(json.dump(), R"([-3,"eu",{"__bytes_hex__":"00ff"},18446744073709551615])");
  auto back = RoutingValuesFromJson(json, "routing_values");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, tokens);
  // Upper-case hex as another writer may produce it.
  auto upper = RoutingValuesFromJson(nlohmann::json::parse(R"([{"__bytes_hex__": "0AFF"}])"), "rv");
  ASSERT_TRUE(upper.ok());
  EXPECT_EQ(std::get<Bytes>((*upper)[0]).data, std::string("\x0a\xff", 2));
}

TEST(RoutingJsonTest, ContextsKeepTypes) {
  auto context = RoutingContextFromJson(
      nlohmann::json::parse(R"({"a": 1, "b": 2.5, "c": "x", "d": true, "e": null, "f": {"__bytes_hex__": "41"}})"),
      "routing_context");
  ASSERT_TRUE(context.ok()) << context.status().ToString();
  EXPECT_EQ(context->at("a"), RoutingValue(int64_t{1}));
  EXPECT_EQ(context->at("b"), RoutingValue(2.5));
  EXPECT_EQ(context->at("c"), RoutingValue(std::string("x")));
  EXPECT_EQ(context->at("d"), RoutingValue(true));
  EXPECT_EQ(context->at("e"), RoutingValue());
  EXPECT_EQ(context->at("f"), RoutingValue(Bytes{"A"}));
}

TEST(RoutingJsonTest, BadValuesNameTheField) {
  struct Case {
    const char* json;
    const char* message;
  };
  for (const Case& c : {Case{R"([[1]])", "rv[0] is [1]"}, Case{R"([{"x": 1}])", "rv[0] is {\"x\":1}"},
                        Case{R"([{"__bytes_hex__": "abc"}])", "odd number of hex digits"},
                        Case{R"([{"__bytes_hex__": "zz"}])", "is not hex"}, Case{R"({"a": 1})", "must be a list"}}) {
    auto r = RoutingValuesFromJson(nlohmann::json::parse(c.json), "rv");
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_NE(r.status().message().find(c.message), std::string::npos) << r.status().message();
  }
  auto not_object = RoutingContextFromJson(nlohmann::json::parse("[1]"), "routing_context");
  ASSERT_FALSE(not_object.ok());
  EXPECT_NE(not_object.status().message().find("routing_context must be an object"), std::string::npos);
}

}  // namespace
}  // namespace shardvec
