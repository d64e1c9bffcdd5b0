// The instruction sets our hand-written kernels (the shard scan, routing distances) come in, and
// the run-time choice between them.
#pragma once

#include <string_view>

namespace shardvec {

enum class ScanIsa { kScalar, kAvx2, kAvx512 };

std::string_view ScanIsaName(ScanIsa isa);
// Whether this CPU can run `isa`.
bool ScanIsaSupported(ScanIsa isa);
// The best supported one; SHARDVEC_SCAN_ISA=scalar|avx2|avx512 caps it (for comparisons).
ScanIsa DefaultScanIsa();

// One instruction set's kernel table out of three, scalar when this CPU cannot run `isa`.
template <typename Table>
const Table& ForIsa(ScanIsa isa, const Table& scalar, const Table& avx2, const Table& avx512) {
  if (!ScanIsaSupported(isa)) return scalar;
  switch (isa) {
    case ScanIsa::kAvx512:
      return avx512;
    case ScanIsa::kAvx2:
      return avx2;
    case ScanIsa::kScalar:
      break;
  }
  return scalar;
}

}  // namespace shardvec
