// CEL routing expressions: evaluations per second of Evaluate alone, Bind alone, and Bind + Evaluate
// (what the writer does per record), for the expressions routing configs typically use.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "routing/cel/cel.h"

namespace {

using shardvec::Bytes;
using shardvec::RoutingContext;
namespace cel = shardvec::cel;

const char* const kExprs[] = {
    "region",                                                                   // categorical (routing_values)
    "shard_hash(tenant_id) % 32u",                                              // hashed buckets
    "tier == 'gold' && size(name) > 3 ? 1 : 0",                                 // && and ?:
    "region in ['eu', 'us', 'apac'] && tenant_id.startsWith('tenant-') ? 1 : 2",  // in + startsWith
    "int(shard_hash(string(n) + region) % 64u)",                                // string building
};

const std::map<std::string, std::string> kColumns = {
    {"region", "string"}, {"tenant_id", "string"}, {"tier", "string"}, {"name", "string"}, {"n", "int"}};

RoutingContext Context() {
  return {{"region", std::string("eu")}, {"tenant_id", std::string("tenant-42")}, {"tier", std::string("gold")},
          {"name", std::string("alice")}, {"n", int64_t{17}}};
}

std::shared_ptr<const cel::Program> CompileOrDie(const char* expr) {
  auto program = cel::Program::Compile(expr, kColumns);
  if (!program.ok()) {
    std::fprintf(stderr, "%s\n", program.status().message().c_str());
    std::abort();
  }
  return *program;
}

void BM_Evaluate(benchmark::State& state) {
  const char* expr = kExprs[state.range(0)];
  auto program = CompileOrDie(expr);
  const RoutingContext ctx = Context();
  std::vector<cel::Value> slots(program->variables().size());
  if (!program->Bind(ctx, slots).ok()) std::abort();
  cel::Scratch scratch;
  for (auto _ : state) {
    auto v = program->Evaluate(slots, scratch);
    benchmark::DoNotOptimize(v);
  }
  state.SetLabel(expr);
  state.SetItemsProcessed(state.iterations());
}

void BM_Bind(benchmark::State& state) {
  const char* expr = kExprs[state.range(0)];
  auto program = CompileOrDie(expr);
  const RoutingContext ctx = Context();
  std::vector<cel::Value> slots(program->variables().size());
  for (auto _ : state) {
    auto s = program->Bind(ctx, slots);
    benchmark::DoNotOptimize(s);
  }
  state.SetLabel(expr);
  state.SetItemsProcessed(state.iterations());
}

void BM_BindAndEvaluate(benchmark::State& state) {
  const char* expr = kExprs[state.range(0)];
  auto program = CompileOrDie(expr);
  const RoutingContext ctx = Context();
  std::vector<cel::Value> slots(program->variables().size());
  cel::Scratch scratch;
  for (auto _ : state) {
    auto s = program->Bind(ctx, slots);
    auto v = program->Evaluate(slots, scratch);
    benchmark::DoNotOptimize(s);
    benchmark::DoNotOptimize(v);
  }
  state.SetLabel(expr);
  state.SetItemsProcessed(state.iterations());
}

void BM_Compile(benchmark::State& state) {
  const char* expr = kExprs[state.range(0)];
  for (auto _ : state) {
    auto p = cel::Program::Compile(expr, kColumns);
    benchmark::DoNotOptimize(p);
  }
  state.SetLabel(expr);
}

BENCHMARK(BM_Evaluate)->DenseRange(0, 4);
BENCHMARK(BM_Bind)->DenseRange(0, 4);
BENCHMARK(BM_BindAndEvaluate)->DenseRange(0, 4);
BENCHMARK(BM_Compile)->DenseRange(0, 4);

}  // namespace

BENCHMARK_MAIN();
