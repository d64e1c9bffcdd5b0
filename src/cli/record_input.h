// The record files `build` and `update` read: a vector file (or .jsonl records) and the column files
// beside it (ids, payloads, shard ids, routing contexts), loaded into one in-memory batch.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shardvec/input_files.h"
#include "shardvec/records.h"
#include "shardvec/status.h"

namespace shardvec::cli {

struct RecordInputFlags {
  std::string_view input_flag = "--input";  // what the vector file's flag is called in errors
  std::string input = {};
  std::optional<std::string> vector_col = {};  // Parquet/Arrow inputs: the columns (see ArrowInputColumns)
  std::string id_col = {};
  std::vector<std::string> payload_cols = {};
  std::string ids_file = {};
  std::string payloads_file = {};
  std::string shard_ids_file = {};
  std::string routing_context_file = {};
};

// The vector file and every column file given, each column file holding one entry per vector; a
// column given both by a flag and by the fields of a .jsonl input is refused.
Result<InputData> LoadRecordInput(const RecordInputFlags& flags);

// The loaded input as one in-memory batch; the routing contexts move into the column the batch views.
struct InputBatch {
  explicit InputBatch(InputData input);
  InputBatch(const InputBatch&) = delete;
  InputBatch& operator=(const InputBatch&) = delete;

  InputData data;
  std::vector<std::optional<RoutingContext>> contexts;
  RecordBatch batch;
};

}  // namespace shardvec::cli
