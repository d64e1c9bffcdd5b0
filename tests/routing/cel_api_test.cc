// The public CEL helpers (shardvec/cel.h): column type checks, result types and routing values as JSON text.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

#include "shardvec/cel.h"

namespace shardvec {
namespace {

TEST(CelApiTest, ColumnTypesAreTheSixCelColumnsTypes) {
  for (const char* type : {"int", "uint", "double", "string", "bytes", "bool"}) {
    EXPECT_TRUE(CheckCelColumnType(type, "f").ok()) << type;
  }
  const Status st = CheckCelColumnType("float", "--cel-column 'x=float': the type");
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(),
            "--cel-column 'x=float': the type is 'float'; expected one of int, uint, double, string, bytes, bool");
}

TEST(CelApiTest, ResultTypeIsTheCheckedTypeOfTheExpression) {
  EXPECT_EQ(CelResultType("region", {{"region", "string"}}).value(), "string");
  EXPECT_EQ(CelResultType("shard_hash(tenant) % 4u", {{"tenant", "string"}}).value(), "uint");
  EXPECT_EQ(CelResultType("n + 1", {{"n", "int"}}).value(), "int");
  EXPECT_EQ(CelResultType("n > 1", {{"n", "int"}}).value(), "bool");
  EXPECT_EQ(CelResultType("b", {{"b", "bytes"}}).value(), "bytes");
}

TEST(CelApiTest, ResultTypeOfABadExpressionIsTheCompileError) {
  const Result<std::string> r = CelResultType("shard_hash(t) % 32", {{"t", "string"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("no matching overload"), std::string::npos) << r.status().message();
  EXPECT_FALSE(CelResultType("x", {{"x", "float"}}).ok());
}

TEST(CelApiTest, RoutingValuesJsonTextIsTheManifestForm) {
  const std::vector<RoutingValue> values = {int64_t{-3}, std::numeric_limits<uint64_t>::max(), std::string("eu"),
                                            Bytes{std::string("\x01\xff", 2)}};
  EXPECT_EQ(RoutingValuesJsonText(values), R"([-3,18446744073709551615,"eu",{"__bytes_hex__":"01ff"}])");
  EXPECT_EQ(RoutingValuesJsonText({}), "[]");
}

}  // namespace
}  // namespace shardvec
