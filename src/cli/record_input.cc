#include "cli/record_input.h"

#include <fmt/format.h>

#include "cli/arrow_input.h"
#include "shardvec/status_macros.h"

namespace shardvec::cli {
namespace {

template <typename T>
Status CheckRowCount(const std::vector<T>& values, int64_t rows, std::string_view flag, const std::string& path,
                     std::string_view input_flag) {
  if (static_cast<int64_t>(values.size()) != rows) {
    return Status::InvalidArgument(fmt::format("{} '{}' has {} rows but {} has {} vectors", flag, path, values.size(),
                                               input_flag, rows));
  }
  return Status::OK();
}

// A column given both by a flag and by the records of a .jsonl input: one of them would be dropped.
template <typename T>
Status CheckGivenOnce(const std::optional<T>& from_input, const std::string& flag_value, std::string_view flag,
                      std::string_view field, const RecordInputFlags& f) {
  if (flag_value.empty() || !from_input) return Status::OK();
  return Status::InvalidArgument(fmt::format(
      "{} '{}' and the '{}' fields of {} '{}' both give this column; give it in one place", flag, flag_value,
      field, f.input_flag, f.input));
}

Result<InputData> LoadVectorFile(const RecordInputFlags& f) {
  if (!IsArrowInputPath(f.input)) return LoadVectorInput(f.input, f.input_flag);
  ArrowInputColumns columns{.id_col = f.id_col, .payload_cols = f.payload_cols};
  if (f.vector_col) columns.vector_col = *f.vector_col;
  return LoadArrowInput(f.input, columns);
}

}  // namespace

Result<InputData> LoadRecordInput(const RecordInputFlags& f) {
  ASSIGN_OR_RETURN(InputData data, LoadVectorFile(f));
  const int64_t rows = data.vectors.rows;
  RETURN_IF_ERROR(CheckGivenOnce(data.ids, f.ids_file, "--ids", "id", f));
  RETURN_IF_ERROR(CheckGivenOnce(data.payloads, f.payloads_file, "--payloads", "payload", f));
  RETURN_IF_ERROR(CheckGivenOnce(data.shard_ids, f.shard_ids_file, "--shard-ids", "shard_id", f));
  RETURN_IF_ERROR(CheckGivenOnce(data.routing_contexts, f.routing_context_file, "--routing-context-file",
                                 "routing_context", f));
  if (!f.ids_file.empty()) {
    ASSIGN_OR_RETURN(data.ids, LoadIdsFile(f.ids_file));
    RETURN_IF_ERROR(CheckRowCount(*data.ids, rows, "--ids", f.ids_file, f.input_flag));
  }
  if (!f.payloads_file.empty()) {
    ASSIGN_OR_RETURN(data.payloads, LoadPayloadsFile(f.payloads_file));
    RETURN_IF_ERROR(CheckRowCount(*data.payloads, rows, "--payloads", f.payloads_file, f.input_flag));
  }
  if (!f.shard_ids_file.empty()) {
    ASSIGN_OR_RETURN(data.shard_ids, LoadShardIdsFile(f.shard_ids_file));
    RETURN_IF_ERROR(CheckRowCount(*data.shard_ids, rows, "--shard-ids", f.shard_ids_file, f.input_flag));
  }
  if (!f.routing_context_file.empty()) {
    ASSIGN_OR_RETURN(data.routing_contexts, LoadRoutingContextsFile(f.routing_context_file));
    RETURN_IF_ERROR(CheckRowCount(*data.routing_contexts, rows, "--routing-context-file", f.routing_context_file,
                                  f.input_flag));
  }
  return data;
}

InputBatch::InputBatch(InputData input) : data(std::move(input)) {
  if (data.routing_contexts) {
    for (RoutingContext& c : *data.routing_contexts) contexts.emplace_back(std::move(c));
  }
  batch.rows = data.vectors.rows;
  batch.dim = data.vectors.cols;
  batch.vectors = data.vectors.data.data();
  if (data.ids) batch.ids = *data.ids;
  if (data.payloads) batch.payloads = *data.payloads;
  if (data.shard_ids) batch.shard_ids = *data.shard_ids;
  batch.routing_contexts = contexts;
}

}  // namespace shardvec::cli
