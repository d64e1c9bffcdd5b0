// The snapshot writer: route records to shards, build each shard as one SQLite/vec0 file in parallel,
// upload, then publish atomically (manifest put-if-absent, then _CURRENT compare-and-swap).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "shardvec/config.h"
#include "shardvec/object_store.h"
#include "shardvec/status.h"
#include "shardvec/types.h"

namespace shardvec {

// A rewindable stream of records: CLUSTER training reads a sample in a first pass.
class RecordSource {
 public:
  virtual ~RecordSource() = default;
  // Fills `out` and returns true, or returns false at the end.
  virtual Result<bool> Next(Record* out) = 0;
  virtual Status Rewind() = 0;
  // The record count when known up front (for progress).
  virtual std::optional<int64_t> SizeHint() const { return std::nullopt; }
  // False for a one-shot stream (e.g. a Python iterator): Rewind() then only works before the first
  // Next(), and the writer keeps its first pass in a local spool file when it needs a second one
  // (CLUSTER training), so the stream is read exactly once.
  virtual bool CanRewind() const { return true; }
  // True for a source holding every record in memory that it can read by position (ReadFieldsAt,
  // VectorAt), from several threads at once (SizeHint must then give the count). The writer then
  // routes on several threads, keeps each shard's row numbers instead of spooling copies of its
  // records to local disk, and reads each vector where the source holds it.
  virtual bool CanReadAt() const { return false; }
  // Row `row`'s id, payload, shard_id and routing_context; `out->vector` is left as it is.
  virtual Status ReadFieldsAt(int64_t row, Record* out) const;
  // Row `row`'s vector where the source holds it, valid while the source lives; `row` is in
  // [0, SizeHint()).
  virtual std::span<const float> VectorAt(int64_t row) const;
  // The whole record, its vector copied: ReadFieldsAt and VectorAt together.
  Status ReadAt(int64_t row, Record* out) const;
};

// Records held in memory.
class VectorRecordSource : public RecordSource {
 public:
  explicit VectorRecordSource(std::vector<Record> records) : records_(std::move(records)) {}
  Result<bool> Next(Record* out) override;
  Status Rewind() override {
    next_ = 0;
    return Status::OK();
  }
  std::optional<int64_t> SizeHint() const override { return static_cast<int64_t>(records_.size()); }
  bool CanReadAt() const override { return true; }
  Status ReadFieldsAt(int64_t row, Record* out) const override;
  std::span<const float> VectorAt(int64_t row) const override;

 private:
  std::vector<Record> records_;
  size_t next_ = 0;
};

struct ShardInfo {
  int64_t db_id = 0;
  std::string db_url;  // .../attempt=NN (without /shard.db), as in the manifest
  int64_t attempt = 0;  // NN; WriteSharded's shards are attempt 0
  int64_t row_count = 0;
  int64_t db_bytes = 0;
  std::string checkpoint_id;
  std::string digest;  // "xxh3:<16 hex>"
};

struct BuildResult {
  std::string run_id;
  std::string manifest_ref;
  int64_t num_dbs = 0;
  int64_t total_vectors = 0;
  double elapsed_ms = 0;
  std::vector<ShardInfo> shards;  // non-empty shards, ascending db_id
};

// Writes and publishes one snapshot. `store` overrides the store opened from config.store (tests
// inject fault-injecting stores this way).
Result<BuildResult> WriteSharded(const WriteConfig& config, RecordSource& records,
                                 std::shared_ptr<ObjectStore> store = nullptr);

}  // namespace shardvec
