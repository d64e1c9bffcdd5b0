// libFuzzer entry for one fuzz target, chosen at build time (SHARDVEC_FUZZ_TARGET; CMake builds
// fuzz_<target> for each). A broken invariant aborts with the reason, which libFuzzer reports as a
// crash and saves the input. With SHARDVEC_FUZZ_SEED_DIR set, the target's seeds are written there
// first (scripts/fuzz passes that folder as the corpus).
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "fuzz/fuzz_targets.h"

namespace {

const shardvec::fuzz::FuzzTarget& Target() {
  static const shardvec::fuzz::FuzzTarget* target = [] {
    const auto* found = shardvec::fuzz::FindFuzzTarget(SHARDVEC_FUZZ_TARGET);
    if (found == nullptr) {
      std::fprintf(stderr, "unknown fuzz target '%s'\n", SHARDVEC_FUZZ_TARGET);
      std::abort();
    }
    return found;
  }();
  return *target;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("SHARDVEC_FUZZ_SEED_DIR")) {
    std::filesystem::create_directories(dir);
    int n = 0;
    for (const std::string& seed : Target().seeds()) {
      std::ofstream out(std::filesystem::path(dir) / ("seed-" + std::to_string(n++)), std::ios::binary);
      out.write(seed.data(), static_cast<std::streamsize>(seed.size()));
    }
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const shardvec::fuzz::FuzzOutcome outcome =
      Target().run(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!outcome.broken.empty()) {
    std::fprintf(stderr, "fuzz invariant broken (%s): %s\n", SHARDVEC_FUZZ_TARGET, outcome.broken.c_str());
    std::abort();
  }
  return 0;
}
