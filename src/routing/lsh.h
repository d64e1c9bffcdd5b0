// LSH routing (docs/routing.md#lsh): random hyperplanes hash a vector to a bit code; the shard is the code
// mod num_dbs. Queries may also probe the shards of single-bit flips.
#pragma once

#include <cstdint>
#include <vector>

#include "shardvec/types.h"

namespace shardvec {

// The most hyperplanes a code can hold; bits past this are ignored.
inline constexpr int64_t kMaxLshBits = 64;
// The hash bits when neither num_hash_bits nor hyperplanes gives them (the reference's default).
inline constexpr int64_t kDefaultLshBits = 8;

// num_bits x dim standard-normal float32 values. Deterministic on every platform: std::mt19937_64
// seeded with `seed`, Box-Muller over 53-bit uniform doubles, filled row by row.
Matrix GenerateHyperplanes(int64_t num_bits, int64_t dim, uint64_t seed = 42);

// Bit i (bit 0 least significant) is set when hyperplane i . v > 0, strictly; a zero projection
// gives 0. v has hyperplanes.cols values.
uint64_t LshCode(const float* v, const Matrix& hyperplanes);

// LshCode(v) % num_dbs; -1 when num_dbs <= 0 (config validation rejects that earlier).
int64_t LshAssign(const float* v, const Matrix& hyperplanes, int64_t num_dbs);

// The primary shard, then (code XOR 2^bit) % num_dbs for bit = 0, 1, ... while shorter than
// num_probes, skipping shards already listed. At most 1 + hyperplanes.rows entries, none when
// num_probes <= 0 or num_dbs <= 0.
std::vector<int64_t> LshProbe(const float* q, const Matrix& hyperplanes, int64_t num_dbs,
                              int64_t num_probes);

// The most shards LshProbe can list with `num_bits` hyperplanes over num_dbs shards: the primary
// and one per usable bit flip, at most num_dbs.
int64_t LshMaxProbes(int64_t num_bits, int64_t num_dbs);

// The shards an LSH code of `num_bits` bits reaches, 2^num_bits (saturated at INT64_MAX): with more
// shards than this, the rest would stay empty.
int64_t LshReachableShards(int64_t num_bits);

}  // namespace shardvec
