// Reads a shard's vectors straight out of vec0's storage tables, for the reader's own scan kernel.
// sqlite-vec v0.1.9 keeps them in `vec_index_chunks` (per chunk: slot count, validity bitmap, the
// rowid of every slot) and `vec_index_vector_chunks00` (per chunk: slot count × dim float32s).
// Only a layout we have verified is read: anything else is left to vec0's own KNN.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>
#include <string_view>

#include "shard/scan_kernel.h"
#include "shardvec/status.h"
#include "shardvec/types.h"

struct sqlite3;

namespace shardvec {

// Whether slot `slot` of a vec0 chunk holds a row: bit slot % 8 of byte slot / 8 of its validity
// bitmap (which must hold that byte).
inline bool Vec0SlotValid(std::string_view validity, int64_t slot) {
  return (static_cast<unsigned char>(validity[static_cast<size_t>(slot / 8)]) >> (slot % 8)) & 1;
}

// sqlite-vec releases whose storage layout LoadVec0Table understands.
inline constexpr std::string_view kKnownVec0Versions[] = {"v0.1.9"};

// True when `db`'s vec_index was created by a version in kKnownVec0Versions with only the
// arguments below, and its shadow tables are declared exactly as that version declares them.
bool IsKnownVec0Layout(sqlite3* db);

// The shard's valid rows as a ScanTable (norms filled for cosine), or nullopt when the table was
// created by another sqlite-vec version or with columns/options beyond `embedding float[dim]`,
// `distance_metric` and `chunk_size`. Corruption (naming `shard_name`) when a recognised layout is
// inconsistent: blob sizes that disagree with the chunk size, a chunk without vectors, a row count
// that disagrees with vec_index_rowids, a non-finite value, or a zero vector under cosine.
//
// `arrange`, when given, places the rows: it receives every valid slot's rowid (vec0's scan order)
// and returns the slot each table row takes (a permutation of the slots), or an empty vector for
// slot order; the table then records it in ScanTable::slots.
using RowArranger = std::function<Result<std::vector<int64_t>>(std::span<const int64_t> slot_rowids)>;
Result<std::optional<ScanTable>> LoadVec0Table(sqlite3* db, int64_t dim, Metric metric,
                                               std::string_view shard_name, const RowArranger& arrange = nullptr);

}  // namespace shardvec
