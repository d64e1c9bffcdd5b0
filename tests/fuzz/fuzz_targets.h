// Fuzz targets: one entry function per parser of untrusted bytes, each feeding the bytes to the
// parser and checking only invariants (an error Status carries a message; a successful parse
// re-serialises and re-parses to the same value where an encoder exists). Crashes, hangs and
// sanitizer reports are found by the sanitizers, not here.
//
// Two drivers run the same entries: the bounded mutation driver in the gtest suite
// (tests/fuzz/fuzz_driver_test.cc) and libFuzzer (tests/fuzz/libfuzzer_main.cc, scripts/fuzz).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace shardvec::fuzz {

// What one input did: whether the parser accepted it, and which invariant broke ("" when none did;
// the drivers report it with the input).
struct FuzzOutcome {
  bool accepted = false;
  std::string broken;
};

struct FuzzTarget {
  std::string_view name;
  FuzzOutcome (*run)(std::string_view data);
  // Valid inputs built in code: the mutation driver's and libFuzzer's starting corpus.
  std::vector<std::string> (*seeds)();
};

// manifest, current_pointer, npy, input_files, cel, filter_column.
const std::vector<FuzzTarget>& AllFuzzTargets();
const FuzzTarget* FindFuzzTarget(std::string_view name);

// The CEL target's declared columns, one of every type (shared with tests/routing/cel/cel_fuzz_test.cc).
const std::map<std::string, std::string>& CelFuzzColumns();

}  // namespace shardvec::fuzz
