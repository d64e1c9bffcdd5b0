// Per-record checks done before a record is routed or stored, so no bad row ever reaches a shard.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "shardvec/status.h"
#include "shardvec/types.h"

namespace shardvec {

class Router;

// Dimension, finite values, and a non-zero vector under cosine (it has no direction, and sqlite-vec
// would return NULL distances for it); also that a string id and the string values of the routing
// context are valid UTF-8 (every path that stores a record runs this check first). `vector` is the record's vector: its own, or the one its
// batch lends in place (RecordBatch::VectorAt). `row` is the record's position in the input.
Status CheckRecordVector(const Record& record, std::span<const float> vector, int64_t dim, Metric metric,
                         int64_t row);

// The largest payload a record may carry, as stored (16 MiB). SQLite's own limit is 1e9 bytes per
// value, and a reader fetches up to 512 payloads at once; larger metadata belongs elsewhere.
inline constexpr size_t kMaxPayloadBytes = size_t{16} << 20;

// The payload as stored: a JSON object re-serialised in Python's json.dumps style, or nullopt.
// Refused, naming the record, when it is not a JSON object or is above kMaxPayloadBytes.
Result<std::optional<std::string>> CanonicalPayload(const Record& record, int64_t row);

// The record's shard, with a routing error naming the row ("… at row 37").
Result<int64_t> AssignRecord(const Router& router, const Record& record, std::span<const float> vector,
                             int64_t row);

}  // namespace shardvec
