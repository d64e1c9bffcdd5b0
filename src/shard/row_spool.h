// RowSpool: a shard's rows parked on disk while the builder decides their order (sub-lists). Vectors
// go to one file that is memory-mapped once every row is in; ids and payloads to another, read back
// row by row. What stays in memory is one offset per row (8 bytes), whatever the rows' size.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "shardvec/status.h"
#include "shardvec/types.h"

namespace shardvec {

class RowSpool {
 public:
  // Creates `<base>.vectors` and `<base>.records` (neither may exist); both are removed with the spool.
  static Result<std::unique_ptr<RowSpool>> Create(const std::filesystem::path& base, int64_t dim);
  ~RowSpool();
  RowSpool(const RowSpool&) = delete;
  RowSpool& operator=(const RowSpool&) = delete;

  Status Add(const RecordId& id, const float* vector, const std::optional<std::string>& payload_json);
  // Ends adding: flushes both files and maps the vectors for reading.
  Status Finish();

  int64_t rows() const { return static_cast<int64_t>(offsets_.size()); }
  int64_t dim() const { return dim_; }
  // Row i's vector (after Finish).
  const float* vector(int64_t i) const { return mapped_ + i * dim_; }
  // Row i's id and payload (after Finish).
  Status Read(int64_t i, RecordId* id, std::optional<std::string>* payload_json);

 private:
  RowSpool(std::filesystem::path vectors_path, std::filesystem::path records_path, int64_t dim)
      : vectors_path_(std::move(vectors_path)), records_path_(std::move(records_path)), dim_(dim) {}
  Status WriteError(const std::filesystem::path& path) const;

  std::filesystem::path vectors_path_;
  std::filesystem::path records_path_;
  int64_t dim_;
  std::FILE* vectors_ = nullptr;
  std::FILE* records_ = nullptr;
  std::vector<int64_t> offsets_;  // where each row's record starts in the records file
  int64_t records_bytes_ = 0;
  int records_fd_ = -1;  // after Finish
  const float* mapped_ = nullptr;
  size_t mapped_bytes_ = 0;
  std::string buffer_;  // one record, encoded or read back
};

}  // namespace shardvec
