// RecordBatch's shape check and row reads, and the two in-memory streams (records.h).
#include "shardvec/records.h"

#include <fmt/format.h>

#include "common/status_macros.h"

namespace shardvec {
namespace {

Status CheckColumn(size_t entries, int64_t rows, std::string_view column) {
  if (entries == 0 || static_cast<int64_t>(entries) == rows) return Status::OK();
  return Status::InvalidArgument(fmt::format("record batch: {} has {} entries for {} rows", column, entries, rows));
}

}  // namespace

Status RecordBatch::Check() const {
  if (rows < 0 || dim < 0) {
    return Status::InvalidArgument(fmt::format("record batch: rows and dim must be >= 0 (got rows {}, dim {})", rows, dim));
  }
  if (vectors == nullptr && rows > 0 && dim > 0) {
    return Status::InvalidArgument(fmt::format("record batch: {} rows but no vectors", rows));
  }
  if (!int_ids.empty() && !ids.empty()) {
    return Status::InvalidArgument("record batch: give int_ids or ids, not both");
  }
  RETURN_IF_ERROR(CheckColumn(int_ids.size(), rows, "int_ids"));
  RETURN_IF_ERROR(CheckColumn(ids.size(), rows, "ids"));
  RETURN_IF_ERROR(CheckColumn(payloads.size(), rows, "payloads"));
  RETURN_IF_ERROR(CheckColumn(shard_ids.size(), rows, "shard_ids"));
  return CheckColumn(routing_contexts.size(), rows, "routing_contexts");
}

void RecordBatch::FieldsAt(int64_t row, Record* out) const {
  const auto i = static_cast<size_t>(row);
  if (!int_ids.empty()) {
    out->id = int_ids[i];
  } else if (!ids.empty()) {
    out->id = ids[i];
  } else {
    out->id = row;
  }
  out->payload_json = payloads.empty() ? std::nullopt : payloads[i];
  out->shard_id = shard_ids.empty() || shard_ids[i] == kNoShardId ? std::nullopt : std::optional<int64_t>(shard_ids[i]);
  out->routing_context = routing_contexts.empty() ? std::nullopt : routing_contexts[i];
}

Result<bool> RecordBatchSource::Next(Record* out) {
  if (next_ == 0) RETURN_IF_ERROR(batch_.Check());
  if (next_ >= batch_.rows) return false;
  batch_.FieldsAt(next_, out);
  const std::span<const float> vector = batch_.VectorAt(next_++);
  out->vector.assign(vector.begin(), vector.end());
  return true;
}

Result<bool> VectorRecordSource::Next(Record* out) {
  if (next_ >= records_.size()) return false;
  *out = records_[next_++];
  return true;
}

}  // namespace shardvec
