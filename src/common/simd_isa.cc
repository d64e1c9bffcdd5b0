#include "common/simd_isa.h"

#include <cstdlib>
#include <string_view>

namespace shardvec {

std::string_view ScanIsaName(ScanIsa isa) {
  switch (isa) {
    case ScanIsa::kAvx512:
      return "avx512";
    case ScanIsa::kAvx2:
      return "avx2";
    case ScanIsa::kScalar:
      break;
  }
  return "scalar";
}

bool ScanIsaSupported(ScanIsa isa) {
  switch (isa) {
    case ScanIsa::kAvx512:
      return __builtin_cpu_supports("avx512f");
    case ScanIsa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case ScanIsa::kScalar:
      break;
  }
  return true;
}

ScanIsa DefaultScanIsa() {
  static const ScanIsa chosen = [] {
    ScanIsa cap = ScanIsa::kAvx512;
    if (const char* env = std::getenv("SHARDVEC_SCAN_ISA")) {
      const std::string_view name(env);
      if (name == "scalar") cap = ScanIsa::kScalar;
      if (name == "avx2") cap = ScanIsa::kAvx2;
    }
    for (ScanIsa isa : {ScanIsa::kAvx512, ScanIsa::kAvx2}) {
      if (static_cast<int>(isa) <= static_cast<int>(cap) && ScanIsaSupported(isa)) return isa;
    }
    return ScanIsa::kScalar;
  }();
  return chosen;
}

}  // namespace shardvec
