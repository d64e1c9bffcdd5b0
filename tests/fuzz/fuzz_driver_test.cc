// The bounded mutation driver for the fuzz targets (tests/fuzz/fuzz_targets.h): starting from each
// target's valid seeds, byte-level mutations (bit flips, byte sets, truncations, erasures,
// insertions, duplications, splices of two seeds) with a fixed random seed and a fixed number of
// executions, so every run of the suite tries the same inputs. Inputs the parser accepts join the
// pool (up to a cap; the seeds stay), so later mutations start from them too; half the mutations
// start from a seed, so one easy-to-accept kind of input cannot crowd out the others. SHARDVEC_FUZZ_SECONDS=N keeps
// mutating for N seconds per target instead (a longer, still seeded, run). libFuzzer runs the same
// entries with coverage feedback: scripts/fuzz.
//
// Below the driver: regression inputs for the bugs the fuzzers found, each the minimal input.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "fuzz/fuzz_targets.h"

namespace shardvec::fuzz {
namespace {

constexpr size_t kMaxPool = 512;
constexpr size_t kMaxInputSize = 1 << 16;

std::string Hex(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes.substr(0, 512)) out += fmt::format("{:02x}", c);
  if (bytes.size() > 512) out += fmt::format("... ({} bytes)", bytes.size());
  return out;
}

class Mutator {
 public:
  explicit Mutator(uint64_t seed) : rng_(seed) {}

  std::string Mutate(const std::string& base, const std::vector<std::string>& pool) {
    std::string out = base;
    const size_t edits = 1 + Pick(4);
    for (size_t k = 0; k < edits; ++k) MutateOnce(out, pool);
    if (out.size() > kMaxInputSize) out.resize(kMaxInputSize);
    return out;
  }

  size_t Pick(size_t n) { return n == 0 ? 0 : static_cast<size_t>(rng_() % n); }

 private:
  void MutateOnce(std::string& s, const std::vector<std::string>& pool) {
    // Bytes parsers care about: zero, sign and top bits, JSON and Python punctuation, digits.
    static const char kInteresting[] = {'\0', '\x01', '\x7f', '\x80', '\xff', '"', '\'', '\\', '[', ']',
                                        '{',  '}',    ',',    ':',    '(',    ')', '\n', ' ',  '-', '9'};
    const size_t at = Pick(s.size() + 1);
    switch (Pick(9)) {
      case 0:  // flip a bit
        if (!s.empty()) s[Pick(s.size())] ^= static_cast<char>(1u << Pick(8));
        break;
      case 1:  // set a byte to a random value
        if (!s.empty()) s[Pick(s.size())] = static_cast<char>(rng_());
        break;
      case 2:  // set a byte to an interesting value
        if (!s.empty()) s[Pick(s.size())] = kInteresting[Pick(sizeof(kInteresting))];
        break;
      case 3:  // truncate
        s.resize(Pick(s.size() + 1));
        break;
      case 4:  // erase a range
        s.erase(std::min(at, s.size()), 1 + Pick(16));
        break;
      case 5: {  // insert random bytes
        std::string bytes(1 + Pick(8), '\0');
        for (char& c : bytes) c = static_cast<char>(rng_());
        s.insert(at, bytes);
        break;
      }
      case 6: {  // insert a run of one interesting byte (nesting, long numbers)
        s.insert(at, 1 + Pick(64), kInteresting[Pick(sizeof(kInteresting))]);
        break;
      }
      case 7: {  // duplicate a range of the input inside it
        if (s.empty()) break;
        const size_t from = Pick(s.size());
        const std::string piece = s.substr(from, 1 + Pick(32));
        s.insert(Pick(s.size() + 1), piece);
        break;
      }
      default: {  // splice: this input's head, another pool input's tail
        const std::string& other = pool[Pick(pool.size())];
        s = s.substr(0, at) + other.substr(std::min(Pick(other.size() + 1), other.size()));
        break;
      }
    }
  }

  std::mt19937_64 rng_;
};

struct FuzzRunStats {
  int64_t executions = 0;
  int64_t accepted = 0;
};

// Runs the target on its seeds, then on mutations; fails the test at the first broken invariant.
FuzzRunStats RunMutationFuzz(const FuzzTarget& target, uint64_t seed, int64_t executions) {
  FuzzRunStats stats;
  std::vector<std::string> pool = target.seeds();
  const size_t num_seeds = pool.size();
  EXPECT_GT(num_seeds, 0u);
  for (const std::string& input : pool) {
    FuzzOutcome outcome = target.run(input);
    EXPECT_TRUE(outcome.accepted) << target.name << " rejects its own seed " << Hex(input);
    EXPECT_EQ(outcome.broken, "") << "seed " << Hex(input);
  }
  const char* seconds_env = std::getenv("SHARDVEC_FUZZ_SECONDS");
  const double seconds = seconds_env != nullptr ? std::atof(seconds_env) : 0.0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  Mutator mutator(seed);
  for (;; ++stats.executions) {
    if (seconds > 0) {
      if ((stats.executions & 255) == 0 && std::chrono::steady_clock::now() > deadline) break;
    } else if (stats.executions >= executions) {
      break;
    }
    const size_t base = mutator.Pick(2) == 0 ? mutator.Pick(num_seeds) : mutator.Pick(pool.size());
    const std::string input = mutator.Mutate(pool[base], pool);
    FuzzOutcome outcome = target.run(input);
    if (!outcome.broken.empty()) {
      ADD_FAILURE() << target.name << ": " << outcome.broken << "\ninput (hex): " << Hex(input);
      return stats;
    }
    if (outcome.accepted) {
      ++stats.accepted;
      if (pool.size() < kMaxPool) pool.push_back(input);
      else pool[num_seeds + mutator.Pick(kMaxPool - num_seeds)] = input;
    }
  }
  std::printf("fuzz %s: %lld executions, %lld accepted by the parser\n", std::string(target.name).c_str(),
              static_cast<long long>(stats.executions), static_cast<long long>(stats.accepted));
  return stats;
}

// `executions`: what scripts/test runs, 1-4 s per target in Release and about 10 s under
// ASan+UBSan, which runs them too (each parse of a manifest opens an SQLite database, so that
// target gets fewer).
void FuzzTargetNamed(std::string_view name, uint64_t seed, int64_t executions) {
  const FuzzTarget* target = FindFuzzTarget(name);
  ASSERT_NE(target, nullptr) << name;
  FuzzRunStats stats = RunMutationFuzz(*target, seed, executions);
  // The mutations must keep reaching past the first checks: some of them still parse.
  EXPECT_GT(stats.accepted, 0) << name;
}

TEST(FuzzMutation, Manifest) { FuzzTargetNamed("manifest", 1001, 20'000); }
TEST(FuzzMutation, CurrentPointer) { FuzzTargetNamed("current_pointer", 1002, 200'000); }
TEST(FuzzMutation, Npy) { FuzzTargetNamed("npy", 1003, 500'000); }
TEST(FuzzMutation, InputFiles) { FuzzTargetNamed("input_files", 1004, 150'000); }
TEST(FuzzMutation, Cel) { FuzzTargetNamed("cel", 1005, 500'000); }
TEST(FuzzMutation, FilterColumn) { FuzzTargetNamed("filter_column", 1006, 1'000'000); }

TEST(FuzzMutation, EveryTargetHasATest) {
  std::vector<std::string> names;
  for (const FuzzTarget& target : AllFuzzTargets()) names.emplace_back(target.name);
  EXPECT_EQ(names, (std::vector<std::string>{"manifest", "current_pointer", "npy", "input_files", "cel", "filter_column"}));
}

}  // namespace
}  // namespace shardvec::fuzz
