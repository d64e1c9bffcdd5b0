// What the writer takes: a RecordBatch (records held in memory, read in place by row) or a
// RecordSource (a stream of records: files, iterators, spools).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "shardvec/status.h"
#include "shardvec/types.h"

namespace shardvec {

// A shard_ids entry meaning "this row has no shard_id".
inline constexpr int64_t kNoShardId = INT64_MIN;

// Rows held in memory, batch-first and row-major (as FAISS's add and search take them): `rows`
// vectors of `dim` float32 values at `vectors`, and optional per-row columns. A column left empty is
// absent; a given column has exactly one entry per row. The batch only views the caller's memory,
// which must outlive it; it is never copied, so the writer reads each vector where it lies, from
// several threads at once.
struct RecordBatch {
  int64_t rows = 0;
  int64_t dim = 0;
  const float* vectors = nullptr;  // rows * dim values, row i at vectors + i * dim
  // Ids: int64 ids, or ids of either type (at most one of the two); neither gives each row its
  // row number.
  std::span<const int64_t> int_ids;
  std::span<const RecordId> ids;
  // A JSON object as text per row, or none.
  std::span<const std::optional<std::string>> payloads;
  // EXPLICIT sharding: each row's shard, kNoShardId for none.
  std::span<const int64_t> shard_ids;
  // CEL sharding: each row's routing context, or none.
  std::span<const std::optional<RoutingContext>> routing_contexts;

  // The shape: rows and dim not negative, vectors given when there are values, every given column
  // one entry per row. Errors are InvalidArgument naming the column and both counts, e.g.
  // "record batch: payloads has 3 entries for 5 rows". Per-row values are checked by whoever reads
  // them (the writer: finite values, valid payload JSON, ...).
  Status Check() const;
  // Row `row`'s vector, in place; `row` is in [0, rows).
  std::span<const float> VectorAt(int64_t row) const {
    return {vectors + row * dim, static_cast<size_t>(dim)};
  }
  // Row `row`'s id, payload, shard_id and routing_context into `out` (its vector is left as it is);
  // `row` is in [0, rows) of a batch Check() accepted.
  void FieldsAt(int64_t row, Record* out) const;
};

// A stream of records. The writer reads it once, or twice for CLUSTER training (a first pass
// samples the training rows), rewinding in between.
class RecordSource {
 public:
  virtual ~RecordSource() = default;
  // Fills `out` and returns true, or returns false at the end.
  virtual Result<bool> Next(Record* out) = 0;
  // Back to the first record; an error for a one-shot stream already read from.
  virtual Status Rewind() = 0;
  // The record count when known up front (for progress).
  virtual std::optional<int64_t> SizeHint() const { return std::nullopt; }
  // False for a one-shot stream (e.g. a Python iterator): Rewind() then only works before the first
  // Next(), and the writer keeps its first pass in a local spool file when it needs a second one
  // (CLUSTER training), so the stream is read exactly once.
  virtual bool CanRewind() const { return true; }
};

// A RecordBatch read as a stream, each record's vector copied out of the batch. The batch's memory
// must outlive the source.
class RecordBatchSource final : public RecordSource {
 public:
  explicit RecordBatchSource(const RecordBatch& batch) : batch_(batch) {}
  // Check()s the batch on the first call and fails with its error.
  Result<bool> Next(Record* out) override;
  Status Rewind() override {
    next_ = 0;
    return Status::OK();
  }
  std::optional<int64_t> SizeHint() const override { return batch_.rows; }

 private:
  RecordBatch batch_;
  int64_t next_ = 0;
};

// Records owned one by one (each with its own vector, so a row of the wrong length can be written
// and is refused by the writer naming the row), streamed in order.
class VectorRecordSource : public RecordSource {
 public:
  explicit VectorRecordSource(std::vector<Record> records) : records_(std::move(records)) {}
  Result<bool> Next(Record* out) override;
  Status Rewind() override {
    next_ = 0;
    return Status::OK();
  }
  std::optional<int64_t> SizeHint() const override { return static_cast<int64_t>(records_.size()); }

 private:
  std::vector<Record> records_;
  size_t next_ = 0;
};

}  // namespace shardvec
