// NumPy .npy encoding and decoding. Pure functions over bytes; no I/O.
//
// Readers accept what np.save writes (versions 1.0, 2.0 and 3.0, either byte order). Every error is
// an InvalidArgument whose message starts with `what`, the caller's name for the bytes
// (e.g. "--centroids 'c.npy'"), so the user learns which file is at fault and why.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "shardvec/status.h"
#include "shardvec/types.h"

namespace shardvec {

// A C-order float16, float32 or float64 array (float16 is widened exactly, float64 narrowed to
// float32). A 2-D array (R, C) gives an
// R×C matrix; a 1-D array (n,) gives a 1×n matrix.
Result<Matrix> ParseNpyMatrix(std::string_view bytes, std::string_view what);

// A 1-D (n,) or n×1 array of any integer dtype (int8..int64, uint8..uint64), or of floats whose
// values are all integral. uint64 values above INT64_MAX are rejected.
Result<std::vector<int64_t>> ParseNpyIntegers(std::string_view bytes, std::string_view what);

// Byte for byte what np.save writes for a C-order float32 2-D array: version 1.0, descr '<f4'.
std::string EncodeNpyMatrix(const Matrix& m);

}  // namespace shardvec
