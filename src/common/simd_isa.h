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

}  // namespace shardvec
