// The binary vector containers `shardvec build --input` reads besides .npy: .fvecs and IDX. Pure
// functions over bytes; no I/O. Every error is an InvalidArgument whose message starts with `what`,
// the caller's name for the bytes (e.g. "--input 'base.fvecs'").
#pragma once

#include <string_view>

#include "shardvec/status.h"
#include "shardvec/types.h"

namespace shardvec {

// .fvecs: rows of (little-endian int32 dim, dim little-endian float32), every row the same dim;
// no bytes is no rows.
Result<Matrix> ParseFvecs(std::string_view bytes, std::string_view what);

// Whether `bytes` start like an IDX file (the MNIST / Fashion-MNIST container): big-endian magic
// 00 00 <type> <ndims> with a type IDX defines and 1-4 dims.
bool LooksLikeIdx(std::string_view bytes);

// IDX images: magic 0x00000803 (n x rows x cols uint8, values 0..255, not normalised) or 0x00000D03
// (float32), becoming n vectors of rows*cols values. `bytes` must pass LooksLikeIdx. Other IDX
// types (e.g. 1-D label files), truncated data and trailing bytes are refused.
Result<Matrix> ParseIdx(std::string_view bytes, std::string_view what);

}  // namespace shardvec
