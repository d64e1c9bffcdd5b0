// Unit tests of the CEL parser, checker and evaluator (semantics checked against cel-cpp; the
// differential tests in tests/python/test_cel.py cover generated expressions).
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <new>

#include "routing/cel/cel.h"
#include "routing/cel/conversions.h"

// Counts allocations made by this test binary, for the no-allocation check. Not under ASan, which
// owns operator new itself (and would flag new/free pairs across the replaced and its own variants).
#if defined(__SANITIZE_ADDRESS__)
#define SHARDVEC_COUNT_ALLOCATIONS 0
#else
#define SHARDVEC_COUNT_ALLOCATIONS 1
#endif
static std::atomic<int64_t> g_allocations{0};
#if SHARDVEC_COUNT_ALLOCATIONS
void* operator new(size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
#endif

namespace shardvec::cel {
namespace {

const std::map<std::string, std::string> kColumns = {
    {"i", "int"}, {"u", "uint"}, {"d", "double"}, {"s", "string"}, {"b", "bytes"}, {"t", "bool"}};

RoutingContext DefaultContext() {
  return {{"i", int64_t{5}}, {"u", uint64_t{7}}, {"d", 2.5}, {"s", std::string("héllo")},
          {"b", Bytes{std::string("ab\xff", 3)}}, {"t", true}};
}

struct Outcome {
  bool compiled = false;
  bool evaluated = false;
  std::string error;
  Value value;
  std::string text;  // strings/bytes copied out of the scratch
  Type result_type = Type::kDyn;
};

Outcome RunExpr(std::string_view expr, const RoutingContext& ctx = DefaultContext(),
            const std::map<std::string, std::string>& columns = kColumns) {
  Outcome out;
  auto program = Program::Compile(expr, columns);
  if (!program.ok()) {
    out.error = program.status().message();
    return out;
  }
  out.compiled = true;
  out.result_type = (*program)->result_type();
  std::vector<Value> slots((*program)->variables().size());
  Status bound = (*program)->Bind(ctx, slots);
  if (!bound.ok()) {
    out.error = bound.message();
    return out;
  }
  Scratch scratch;
  auto v = (*program)->Evaluate(slots, scratch);
  if (!v.ok()) {
    out.error = v.status().message();
    return out;
  }
  out.evaluated = true;
  out.value = *v;
  out.text = std::string(v->s);
  return out;
}

int64_t Int(std::string_view expr) {
  Outcome o = RunExpr(expr);
  EXPECT_TRUE(o.evaluated) << expr << ": " << o.error;
  EXPECT_EQ(o.value.type, Type::kInt) << expr;
  return o.value.i;
}
uint64_t Uint(std::string_view expr) {
  Outcome o = RunExpr(expr);
  EXPECT_TRUE(o.evaluated) << expr << ": " << o.error;
  EXPECT_EQ(o.value.type, Type::kUint) << expr;
  return o.value.u;
}
double Double(std::string_view expr) {
  Outcome o = RunExpr(expr);
  EXPECT_TRUE(o.evaluated) << expr << ": " << o.error;
  EXPECT_EQ(o.value.type, Type::kDouble) << expr;
  return o.value.d;
}
bool Bool(std::string_view expr) {
  Outcome o = RunExpr(expr);
  EXPECT_TRUE(o.evaluated) << expr << ": " << o.error;
  EXPECT_EQ(o.value.type, Type::kBool) << expr;
  return o.value.b;
}
std::string Str(std::string_view expr) {
  Outcome o = RunExpr(expr);
  EXPECT_TRUE(o.evaluated) << expr << ": " << o.error;
  EXPECT_TRUE(o.value.type == Type::kString || o.value.type == Type::kBytes) << expr;
  return o.text;
}
std::string CompileError(std::string_view expr) {
  Outcome o = RunExpr(expr);
  EXPECT_FALSE(o.compiled) << expr << " compiled";
  return o.error;
}
std::string EvalError(std::string_view expr, const RoutingContext& ctx = DefaultContext()) {
  Outcome o = RunExpr(expr, ctx);
  EXPECT_TRUE(o.compiled) << expr << ": " << o.error;
  EXPECT_FALSE(o.evaluated) << expr << " evaluated";
  return o.error;
}

TEST(CelParse, IntLiterals) {
  EXPECT_EQ(Int("42"), 42);
  EXPECT_EQ(Int("0x1F"), 31);
  EXPECT_EQ(Int("007"), 7);
  EXPECT_EQ(Int("-9223372036854775808"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(Int("-0x8000000000000000"), std::numeric_limits<int64_t>::min());
  EXPECT_NE(CompileError("9223372036854775808").find("invalid int literal at column 1"), std::string::npos);
  EXPECT_NE(CompileError("0x8000000000000000").find("invalid hex int literal"), std::string::npos);
  EXPECT_NE(CompileError("--9223372036854775808").find("invalid int literal at column 3"), std::string::npos);
  CompileError("- -9223372036854775808");
  EXPECT_EQ(Int("- 1"), -1);
  EXPECT_EQ(Int("--1"), 1);
  EXPECT_EQ(Int("- - 1"), 1);
  EXPECT_EQ(Int("---1"), -1);
}

TEST(CelParse, UintAndDoubleLiterals) {
  EXPECT_EQ(Uint("18446744073709551615u"), UINT64_MAX);
  EXPECT_EQ(Uint("0xFFFFFFFFFFFFFFFFU"), UINT64_MAX);
  CompileError("18446744073709551616u");
  EXPECT_EQ(Double("1.5"), 1.5);
  EXPECT_EQ(Double(".5"), 0.5);
  EXPECT_EQ(Double("1e3"), 1000.0);
  EXPECT_EQ(Double("2.5e-3"), 0.0025);
  EXPECT_TRUE(std::isinf(Double("1e309")));
  EXPECT_EQ(Double("-1.5"), -1.5);
  CompileError("1.");
  CompileError("1.e5");
}

TEST(CelParse, StringsAndEscapes) {
  EXPECT_EQ(Str(R"('a\nb')"), "a\nb");
  EXPECT_EQ(Str(R"("\x41\101\u00e9\U0001F600")"), "AA\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_EQ(Str(R"("\a\b\f\r\t\v\\\'\"\`\?")"), "\a\b\f\r\t\v\\'\"`?");
  EXPECT_EQ(Str("'''a\nb'''"), "a\nb");
  EXPECT_EQ(Str("\"\"\"x\"y\"\"\""), "x\"y");
  EXPECT_EQ(Str(R"(r'\n')"), "\\n");
  EXPECT_EQ(Str(R"(R"\x")"), "\\x");
  EXPECT_EQ(Str(R"(b'\xff\377\x00')"), std::string("\xff\xff\x00", 3));
  EXPECT_EQ(Str(R"(b'é')"), "\xc3\xa9");
  EXPECT_EQ(Str(R"('\xff')"), "\xc3\xbf");  // in strings \x is a code point
  CompileError(R"(b'\u00e9')");
  CompileError(R"('\uD800')");
  CompileError(R"('\q')");
  CompileError("'a\nb'");
  CompileError("'unterminated");
  CompileError("'bad escape at end\\");
  CompileError("\"\xff\"");  // invalid UTF-8 in the source
}

TEST(CelParse, PrecedenceAndAssociativity) {
  EXPECT_EQ(Int("1 + 2 * 3 % 4"), 3);
  EXPECT_EQ(Int("10 - 2 - 3"), 5);
  EXPECT_EQ(Int("100 / 10 / 5"), 2);
  EXPECT_EQ(Int("true ? 1 : false ? 2 : 3"), 1);
  EXPECT_EQ(Int("false ? 1 : false ? 2 : 3"), 3);
  EXPECT_TRUE(Bool("true || false && false"));
  EXPECT_TRUE(Bool("1 + 1 == 2 && 'a' < 'b'"));
  EXPECT_TRUE(Bool("!!t"));
  EXPECT_EQ(Uint("--u"), 7u);   // pairs of '-' cancel, as in cel-cpp
  EXPECT_EQ(Int("!!i"), 5);
  EXPECT_TRUE(Bool("1 == 1 == true"));
  CompileError("-!t");
  CompileError("!-1");  // '!' applied to the int literal -1
}

TEST(CelParse, ListsAndCalls) {
  EXPECT_EQ(Int("size([1, 2, 3,])"), 3);
  EXPECT_EQ(Int("size([,])"), 0);
  EXPECT_EQ(Int("[1, 'a'].size()"), 2);
  EXPECT_EQ(Int("size(s)"), 5);
  EXPECT_EQ(Int("s.size()"), 5);
  EXPECT_EQ(Int("size(b)"), 3);
  EXPECT_EQ(Int(".i"), 5);
  CompileError("()");
  CompileError("[1, 2][0]");
  CompileError("{1: 2}");
  CompileError("a.b");
  CompileError("in");
  CompileError("if");
}

TEST(CelParse, ErrorPositionsAndCaret) {
  const std::string e = CompileError("shard_hash(s) % 32");
  EXPECT_NE(e.find("cel_expr: found no matching overload for '_%_' applied to '(uint, int)' at column 15"),
            std::string::npos) << e;
  EXPECT_NE(e.find("\n | shard_hash(s) % 32\n | ..............^"), std::string::npos) << e;
  EXPECT_NE(e.find("write the literal as 32u, or convert with int(...)"), std::string::npos) << e;
  const std::string u = CompileError("'é' + hello");
  EXPECT_NE(u.find("undeclared reference to 'hello' at column 7"), std::string::npos) << u;  // code points
  EXPECT_NE(CompileError("i + héllo").find("unexpected character outside a string literal at column 6"),
            std::string::npos);
  const std::string line2 = CompileError("1 +\n  x");
  EXPECT_NE(line2.find("at line 2, column 3"), std::string::npos) << line2;
  EXPECT_NE(CompileError("size(1)").find("at column 5"), std::string::npos);
}

TEST(CelParse, BoundsOnDepthAndLength) {
  const std::string deep(5000, '(');
  EXPECT_NE(CompileError(deep + "1" + std::string(5000, ')')).find("nested too deeply"), std::string::npos);
  EXPECT_EQ(Int(std::string(10000, '-') + "1"), 1);  // unary runs are loops, not recursion
  std::string chain = "1";
  for (int k = 0; k < 2000; ++k) chain += " + 1";
  EXPECT_NE(CompileError(chain).find("nested too deeply"), std::string::npos);
  std::string big_list = "[";
  for (int k = 0; k < 5000; ++k) big_list += "1,";
  EXPECT_EQ(Int("size(" + big_list + "])"), 5000);
  EXPECT_NE(CompileError(std::string(20000, ' ') + "1").find("the limit is"), std::string::npos);
  std::string nested_lists;
  for (int k = 0; k < 100; ++k) nested_lists += "[";
  CompileError(nested_lists);
}

TEST(CelCheck, NoImplicitConversions) {
  for (const char* expr : {"i + u", "1 == 1u", "1 < 1.5", "2.0 * 3", "d % 2.0", "-u", "-1u", "i == null", "1 < 2 < 3",
                           "[1, 2] == [1u]", "1 in [1u]", "t ? 1 : 1u", "t ? null : 1", "1 ? 1 : 2", "!i", "i && t",
                           "size(1)", "int(true)", "bool(1)", "shard_hash(true)", "shard_hash(d)", "s.startsWith(1)",
                           "startsWith(s, 'h')", "i.size()", "size(s, s)", "s + b", "b < s", "[1] < [2]",
                           "t ? [1] : ['a']", "[1] + [1u]", "int", "missing", "foo(1)", "s.foo()", "[[1], [2]] == [['a']]"}) {
    CompileError(expr);
  }
  EXPECT_NE(CompileError("i + u").find("'(int, uint)'"), std::string::npos);
  EXPECT_NE(CompileError("1 < 2 < 3").find("'(bool, int)' at column 7"), std::string::npos);
}

TEST(CelCheck, ResultTypes) {
  EXPECT_EQ(RunExpr("s").result_type, Type::kString);
  EXPECT_EQ(RunExpr("shard_hash(s) % 32u").result_type, Type::kUint);
  EXPECT_EQ(RunExpr("[1]").result_type, Type::kList);
  EXPECT_EQ(RunExpr("null").result_type, Type::kNull);
  EXPECT_EQ(RunExpr("t ? b : b'x'").result_type, Type::kBytes);
}

TEST(CelEval, Arithmetic) {
  EXPECT_EQ(Int("i * 3 - 1"), 14);
  EXPECT_EQ(Int("-7 / 2"), -3);
  EXPECT_EQ(Int("-7 % 3"), -1);
  EXPECT_EQ(Uint("u * 2u + 1u"), 15u);
  EXPECT_EQ(Double("d * 2.0"), 5.0);
  EXPECT_TRUE(std::isinf(Double("1.0 / 0.0")));
  EXPECT_TRUE(std::isnan(Double("0.0 / 0.0")));
  EXPECT_EQ(Str("s + '!'"), "héllo!");
  EXPECT_EQ(Str("b + b'z'"), std::string("ab\xffz", 4));
  EXPECT_EQ(Int("size([1] + [2, 'x'])"), 3);
}

TEST(CelEval, RuntimeErrors) {
  EXPECT_NE(EvalError("9223372036854775807 + 1").find("integer overflow at column 21"), std::string::npos);
  EvalError("-9223372036854775807 - 2");
  EvalError("4611686018427387904 * 2");
  EvalError("-(-9223372036854775807 - 1)");
  EvalError("(-9223372036854775807 - 1) / -1");
  EXPECT_NE(EvalError("(-9223372036854775807 - 1) % -1").find("integer overflow"), std::string::npos);
  EXPECT_NE(EvalError("18446744073709551615u + 1u").find("unsigned integer overflow"), std::string::npos);
  EvalError("0u - 1u");
  EvalError("9223372036854775808u * 2u");
  EXPECT_NE(EvalError("i / 0").find("divide by zero"), std::string::npos);
  EXPECT_NE(EvalError("i % 0").find("modulus by zero"), std::string::npos);
  EvalError("u / 0u");
  EXPECT_NE(EvalError("u % 0u").find("modulus by zero"), std::string::npos);
  EXPECT_NE(EvalError("int(1e19)").find("double out of int64 range"), std::string::npos);
  EvalError("int(-9223372036854775808.0)");
  EvalError("int(0.0 / 0.0)");
  EvalError("uint(-1)");
  EvalError("uint(-0.9)");
  EvalError("uint(18446744073709551615.0)");
  EvalError("int(18446744073709551615u)");
  EXPECT_NE(EvalError("int('1_000')").find("cannot convert string to int"), std::string::npos);
  EvalError("int('')");
  EvalError("int('0x10')");
  EvalError("uint('-0')");
  EvalError("double('1_0')");
  EvalError("bool('yes')");
  EXPECT_NE(EvalError("string(b'\\xff')").find("malformed UTF-8 bytes"), std::string::npos);
  EvalError("shard_hash(9223372036854775808u)");
  EvalError("[1 / 0] == [1]");
  EvalError("t ? 1 / 0 : 1");
  EvalError("(1 / 0 == 1) ? 1 : 2");
}

TEST(CelEval, ShortCircuitAbsorbsErrors) {
  EXPECT_FALSE(Bool("false && (1 / 0 == 1)"));
  EXPECT_FALSE(Bool("(1 / 0 == 1) && false"));
  EXPECT_TRUE(Bool("(1 / 0 == 1) || true"));
  EXPECT_TRUE(Bool("true || (1 / 0 == 1)"));
  EvalError("true && (1 / 0 == 1)");
  EvalError("(1 / 0 == 1) || false");
  EvalError("(1 / 0 == 1) && (int('x') == 1)");
  EXPECT_EQ(Int("t ? 1 : 1 / 0"), 1);
}

TEST(CelEval, UnboundVariables) {
  RoutingContext ctx = DefaultContext();
  ctx.erase("i");
  EXPECT_TRUE(RunExpr("true || i == 1", ctx).value.b);
  EXPECT_FALSE(RunExpr("false && i == 1", ctx).value.b);
  EXPECT_EQ(RunExpr("s", ctx).text, "héllo");
  const std::string e = EvalError("i + 1", ctx);
  EXPECT_NE(e.find("no value in routing_context for 'i' at column 1"), std::string::npos) << e;
}

TEST(CelEval, ComparisonsAndEquality) {
  EXPECT_TRUE(Bool("'a' < 'b' && 'ab' > 'a' && 'é' > 'z'"));
  EXPECT_TRUE(Bool("b'\\x00' < b'\\x01' && b'' < b'\\x00'"));
  EXPECT_TRUE(Bool("false < true"));
  EXPECT_FALSE(Bool("0.0 / 0.0 == 0.0 / 0.0"));
  EXPECT_TRUE(Bool("0.0 / 0.0 != 0.0 / 0.0"));
  EXPECT_TRUE(Bool("-0.0 == 0.0"));
  EXPECT_TRUE(Bool("null == null"));
  EXPECT_TRUE(Bool("[1, 2] == [1, 2]"));
  EXPECT_FALSE(Bool("[1, 'a'] == [1u]"));
  EXPECT_TRUE(Bool("[1, 'a'] == [1u, 'a']"));  // heterogeneous numeric equality inside dyn lists
  EXPECT_TRUE(Bool("1 in [1u, 'x']"));
  EXPECT_TRUE(Bool("1 in [1.0, 'x']"));
  EXPECT_FALSE(Bool("9007199254740993 in [9007199254740992.0, 'x']"));
  EXPECT_TRUE(Bool("[1] in [[1], [2]]"));
  EXPECT_TRUE(Bool("s in ['eu', 'héllo']"));
  EXPECT_FALSE(Bool("i in []"));
  EXPECT_TRUE(Bool("i in [1, i]"));
  EXPECT_TRUE(Bool("s.startsWith('hé') && s.endsWith('llo') && s.contains('él') && s.contains('')"));
}

TEST(CelEval, Conversions) {
  EXPECT_EQ(Int("int(-2.9)"), -2);
  EXPECT_EQ(Int("int(9223372036854774784.0)"), 9223372036854774784);
  EXPECT_EQ(Int("int(' 12 ')"), 12);
  EXPECT_EQ(Int("int('+12')"), 12);
  EXPECT_EQ(Int("int('-0012')"), -12);
  EXPECT_EQ(Int("int('\\t12\\n')"), 12);
  EXPECT_EQ(Int("int(u)"), 7);
  EXPECT_EQ(Uint("uint(-0.0)"), 0u);
  EXPECT_EQ(Uint("uint(' +5')"), 5u);
  EXPECT_EQ(Uint("uint(i)"), 5u);
  EXPECT_EQ(Double("double('0x1p3')"), 8.0);
  EXPECT_EQ(Double("double('5.')"), 5.0);
  EXPECT_TRUE(std::isinf(Double("double('-Infinity')")));
  EXPECT_EQ(Double("double(18446744073709551615u)"), 18446744073709551616.0);
  EXPECT_EQ(Str("string(-5)"), "-5");
  EXPECT_EQ(Str("string(18446744073709551615u)"), "18446744073709551615");
  EXPECT_EQ(Str("string(true)"), "true");
  EXPECT_EQ(Str("string(b'abc')"), "abc");
  EXPECT_EQ(Str("bytes('é')"), "\xc3\xa9");
  EXPECT_TRUE(Bool("bool('True') && !bool('0') && bool('t')"));
}

TEST(CelEval, StringOfDoubleMatchesCelCpp) {
  const std::pair<double, const char*> cases[] = {
      {1.0, "1"}, {0.1, "0.1"}, {1e100, "1e+100"}, {123456789.0, "1.23456789e+08"}, {100000.0, "100000"},
      {1234567.0, "1.234567e+06"}, {1e-07, "1e-07"}, {1.0 / 3.0, "0.3333333333333333"}, {-0.0, "-0"},
      {INFINITY, "inf"}, {-INFINITY, "-inf"}, {0.0001, "0.0001"}, {0.00001, "1e-05"}, {123456.0, "123456"},
      {0.1 + 0.2, "0.30000000000000004"}, {5e-324, "5e-324"}, {1.7976931348623157e308, "1.7976931348623157e+308"},
      {1e21, "1e+21"}, {-2.5, "-2.5"}};
  for (const auto& [v, want] : cases) {
    char buf[kNumberBufSize];
    EXPECT_EQ(std::string(buf, FormatDouble(v, buf)), want) << v;
  }
  EXPECT_EQ(Str("string(0.0 / 0.0)"), "-nan");  // x86's default NaN has the sign bit, as in cel-cpp
  EXPECT_EQ(Str("string(double('nan'))"), "nan");
}

TEST(CelBind, ConversionsAndErrors) {
  auto program = Program::Compile("i", {{"i", "int"}, {"u", "uint"}, {"d", "double"}, {"s", "string"}});
  ASSERT_TRUE(program.ok());
  std::vector<Value> slots(4);
  auto bind = [&](RoutingContext ctx) { return (*program)->Bind(ctx, slots); };
  EXPECT_TRUE(bind({{"i", uint64_t{5}}}).ok());
  EXPECT_TRUE(bind({{"u", int64_t{5}}}).ok());
  EXPECT_TRUE(bind({{"d", int64_t{5}}}).ok());
  EXPECT_TRUE(bind({{"other", std::string("ignored")}}).ok());
  const Status big = bind({{"i", uint64_t{1} << 63}});
  EXPECT_EQ(big.message(), "routing_context['i'] must be int (cel_columns), got 9223372036854775808u");
  EXPECT_EQ(bind({{"u", int64_t{-1}}}).message(), "routing_context['u'] must be uint (cel_columns), got -1");
  EXPECT_EQ(bind({{"s", int64_t{5}}}).message(), "routing_context['s'] must be string (cel_columns), got 5");
  EXPECT_EQ(bind({{"s", Bytes{std::string("\x00\xff", 2)}}}).message(),
            "routing_context['s'] must be string (cel_columns), got b\"\\x00\\xff\"");
  EXPECT_EQ(bind({{"i", std::monostate{}}}).message(), "routing_context['i'] must be int (cel_columns), got null");
  EXPECT_EQ(bind({{"d", std::string("eu")}}).message(), "routing_context['d'] must be double (cel_columns), got \"eu\"");
  EXPECT_FALSE(bind({{"s", std::string("\xff")}}).ok());
  std::vector<Value> wrong(2);
  EXPECT_FALSE((*program)->Bind({}, wrong).ok());
  auto bad = Program::Compile("x", {{"x", "float"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("cel_columns['x']"), std::string::npos);
}

TEST(CelBind, RoutingValueToString) {
  EXPECT_EQ(RoutingValueToString(int64_t{5}), "5");
  EXPECT_EQ(RoutingValueToString(uint64_t{5}), "5u");
  EXPECT_EQ(RoutingValueToString(2.5), "2.5");
  EXPECT_EQ(RoutingValueToString(3.0), "3.0");
  EXPECT_EQ(RoutingValueToString(std::string("eu")), "\"eu\"");
  EXPECT_EQ(RoutingValueToString(std::string("a\"b\\\n")), "\"a\\\"b\\\\\\n\"");
  EXPECT_EQ(RoutingValueToString(Bytes{std::string("\x00\xff", 2)}), "b\"\\x00\\xff\"");
  EXPECT_EQ(RoutingValueToString(true), "true");
  EXPECT_EQ(RoutingValueToString(std::monostate{}), "null");
}

TEST(CelShardHash, KnownVectors) {
  // Expected values from Python's xxhash.xxh3_64_intdigest over the canonical bytes (seed 0).
  EXPECT_EQ(ShardHashInt(std::numeric_limits<int64_t>::min()), 9407778237848358495ull);
  EXPECT_EQ(ShardHashInt(-1), 5841669975847748627ull);
  EXPECT_EQ(ShardHashInt(0), 14374147212387527897ull);
  EXPECT_EQ(ShardHashInt(1), 3439722301264460078ull);
  EXPECT_EQ(ShardHashInt(std::numeric_limits<int64_t>::max()), 11687913294787043142ull);
  EXPECT_EQ(ShardHashBytes(""), 3244421341483603138ull);
  EXPECT_EQ(ShardHashBytes("tenant-42"), 17185577506994869263ull);
  EXPECT_EQ(ShardHashBytes("héllo"), 7657728615535385375ull);
  EXPECT_EQ(ShardHashBytes("日本語"), 1296689438140682423ull);
  EXPECT_EQ(ShardHashBytes(std::string("\x00\xff", 2)), 12221366661834116083ull);
  EXPECT_EQ(Uint("shard_hash(-1)"), 5841669975847748627ull);
  EXPECT_EQ(Uint("shard_hash(1u)"), 3439722301264460078ull);
  EXPECT_EQ(Uint("shard_hash('tenant-42')"), 17185577506994869263ull);
  EXPECT_EQ(Uint("shard_hash(b'')"), 3244421341483603138ull);
  EXPECT_EQ(Uint("shard_hash('tenant-42') % 32u"), 17185577506994869263ull % 32);
}

TEST(CelEval, HotPathDoesNotAllocate) {
  if (!SHARDVEC_COUNT_ALLOCATIONS) GTEST_SKIP() << "allocation counting is off under ASan";
  const std::map<std::string, std::string> columns = {
      {"region", "string"}, {"tenant_id", "string"}, {"tier", "string"}, {"name", "string"}, {"n", "int"}};
  RoutingContext ctx = {{"region", std::string("eu")}, {"tenant_id", std::string("tenant-42")},
                        {"tier", std::string("gold")}, {"name", std::string("alice")}, {"n", int64_t{3}}};
  for (const char* expr : {"region", "shard_hash(tenant_id) % 32u", "tier == 'gold' && size(name) > 3 ? 1 : 0",
                           "region in ['eu', 'us'] && tenant_id.startsWith('ten')", "string(n) + region + string(2.5)",
                           "int(shard_hash(tenant_id) % 32u) + n * 2"}) {
    auto program = Program::Compile(expr, columns);
    ASSERT_TRUE(program.ok()) << program.status().message();
    std::vector<Value> slots((*program)->variables().size());
    Scratch scratch;
    ASSERT_TRUE((*program)->Bind(ctx, slots).ok());
    ASSERT_TRUE((*program)->Evaluate(slots, scratch).ok());  // warms the scratch
    const int64_t before = g_allocations.load();
    for (int k = 0; k < 1000; ++k) {
      Status bound = (*program)->Bind(ctx, slots);
      auto v = (*program)->Evaluate(slots, scratch);
      ASSERT_TRUE(bound.ok() && v.ok());
    }
    EXPECT_EQ(g_allocations.load() - before, 0) << expr;
  }
}

TEST(CelEval, ProgramIsShareableAcrossScratches) {
  auto program = Program::Compile("s + string(i)", kColumns);
  ASSERT_TRUE(program.ok());
  const RoutingContext ctx = DefaultContext();
  std::vector<Value> slots((*program)->variables().size());
  ASSERT_TRUE((*program)->Bind(ctx, slots).ok());
  Scratch a, b;
  auto va = (*program)->Evaluate(slots, a);
  auto vb = (*program)->Evaluate(slots, b);
  ASSERT_TRUE(va.ok() && vb.ok());
  EXPECT_EQ(va->s, "héllo5");
  EXPECT_EQ(vb->s, "héllo5");
  EXPECT_NE(va->s.data(), vb->s.data());
}

}  // namespace
}  // namespace shardvec::cel
