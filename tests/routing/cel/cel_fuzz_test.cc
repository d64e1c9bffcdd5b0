// Bounded random fuzzing of Compile and Evaluate: random bytes, token soups, deep nesting, long
// inputs, unterminated strings and escapes, invalid UTF-8. Nothing may crash, hang or trip the
// sanitizers; whatever compiles is evaluated against random contexts.
#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "fuzz/fuzz_targets.h"
#include "routing/cel/cel.h"

namespace shardvec::cel {
namespace {

const std::map<std::string, std::string>& kColumns = fuzz::CelFuzzColumns();

const std::vector<std::string> kTokens = {
    "i", "u", "d", "s", "b", "t", "x", "0", "1", "-1", "7", "32u", "0u", "9223372036854775807", "-9223372036854775808",
    "9223372036854775808", "18446744073709551615u", "0x7f", "1.5", ".5", "1e309", "0.0", "1.", "'a'", "'héllo'",
    "\"\"", "b'\\xff'", "b''", "r'\\n'", "'''x'''", "'\\u00e9'", "'\\", "'unterminated", "\"\\x4", "'\\uD800'",
    "true", "false", "null", "+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "&&", "||", "!", "?", ":",
    "in", "(", ")", "[", "]", ",", ".", "{", "}", "size", "int", "uint", "double", "string", "bytes", "bool",
    "shard_hash", "startsWith", "endsWith", "contains", ".size()", ".startsWith(", " ", "\n", "\xff", "\xc3",
    "\xe6\x97\xa5", "//c\n", "if", "_"};

RoutingContext RandomContext(std::mt19937_64& rng) {
  RoutingContext ctx;
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); };
  const int64_t ints[] = {0, 1, -1, INT64_MAX, INT64_MIN, 32, static_cast<int64_t>(rng())};
  const uint64_t uints[] = {0, 1, UINT64_MAX, uint64_t{1} << 63, 7, rng()};
  const double doubles[] = {0.0, -0.0, 1.5, 1e308, -1e308, std::numeric_limits<double>::infinity(),
                            std::numeric_limits<double>::quiet_NaN(), 9.3e18};
  const char* strings[] = {"", "a", "héllo", "12", " -7 ", "1e3", "true", "日本"};
  if (pick(10)) ctx["i"] = ints[pick(7)];
  if (pick(10)) ctx["u"] = uints[pick(6)];
  if (pick(10)) ctx["d"] = doubles[pick(8)];
  if (pick(10)) ctx["s"] = std::string(strings[pick(8)]);
  if (pick(10)) ctx["b"] = Bytes{std::string("\x00\xff\xc3", static_cast<size_t>(pick(4)))};
  if (pick(10)) ctx["t"] = pick(2) == 1;
  return ctx;
}

std::string RandomInput(std::mt19937_64& rng) {
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  std::string out;
  switch (pick(6)) {
    case 0: {  // random bytes
      const size_t n = pick(64);
      for (size_t k = 0; k < n; ++k) out.push_back(static_cast<char>(rng()));
      break;
    }
    case 1:
    case 2: {  // token soup
      const size_t n = 1 + pick(24);
      for (size_t k = 0; k < n; ++k) {
        out += kTokens[pick(kTokens.size())];
        if (pick(3) == 0) out += ' ';
      }
      break;
    }
    case 3: {  // deep nesting of one kind
      const char* opens[] = {"(", "[", "-", "!", "size(", "int(", "[1,"};
      const char* closes[] = {")", "]", "", "", ")", ")", "]"};
      const size_t kind = pick(7);
      const size_t depth = pick(400);
      for (size_t k = 0; k < depth; ++k) out += opens[kind];
      out += kTokens[pick(kTokens.size())];
      const size_t close = pick(2) ? depth : pick(depth + 1);
      for (size_t k = 0; k < close; ++k) out += closes[kind];
      break;
    }
    case 4: {  // long chains of binary operators
      const char* ops[] = {" + ", " && ", " || ", " - ", " == ", " * "};
      const size_t n = pick(600);
      out = "1";
      for (size_t k = 0; k < n; ++k) out += std::string(ops[pick(6)]) + kTokens[pick(12)];
      break;
    }
    default: {  // mutate a valid expression
      const char* seeds[] = {"shard_hash(s) % 32u", "s in ['a', 'héllo'] && t ? 1 : 2", "int(d) + i * 2",
                             "string(b) + s", "[1, 'a'] == [1u, 'a']", "uint(s) / u", "b'\\x00' + bytes(s)"};
      out = seeds[pick(7)];
      const size_t edits = 1 + pick(4);
      for (size_t k = 0; k < edits && !out.empty(); ++k) {
        const size_t at = pick(out.size());
        switch (pick(3)) {
          case 0: out.erase(at, 1); break;
          case 1: out.insert(at, kTokens[pick(kTokens.size())]); break;
          default: out[at] = static_cast<char>(rng()); break;
        }
      }
    }
  }
  return out;
}

TEST(CelFuzz, CompileAndEvaluateNeverCrash) {
  std::mt19937_64 rng(12345);
  const auto start = std::chrono::steady_clock::now();
  int64_t compiled = 0, evaluated = 0, iterations = 0;
  Scratch scratch;
  std::vector<Value> slots;
  for (; iterations < 300000; ++iterations) {
    // Stay bounded in slow (sanitizer) builds: stop after 60 s whatever the count.
    if ((iterations & 1023) == 0 && std::chrono::steady_clock::now() - start > std::chrono::seconds(60)) break;
    const std::string input = RandomInput(rng);
    auto program = Program::Compile(input, kColumns);
    if (!program.ok()) {
      ASSERT_FALSE(program.status().message().empty());
      continue;
    }
    ++compiled;
    slots.assign((*program)->variables().size(), Value{});
    for (int round = 0; round < 3; ++round) {
      const RoutingContext ctx = RandomContext(rng);
      if (!(*program)->Bind(ctx, slots).ok()) continue;
      auto v = (*program)->Evaluate(slots, scratch);
      if (v.ok()) {
        ++evaluated;
        ASSERT_NE(v->type, Type::kError);
        ASSERT_NE(v->type, Type::kUnbound);
      }
    }
  }
  std::printf("cel fuzz: %lld inputs, %lld compiled, %lld evaluations succeeded\n",
              static_cast<long long>(iterations), static_cast<long long>(compiled), static_cast<long long>(evaluated));
  EXPECT_GT(compiled, iterations / 50);
}

}  // namespace
}  // namespace shardvec::cel
