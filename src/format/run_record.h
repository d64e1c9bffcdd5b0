// Run records (docs/snapshot-format.md#run-records): a YAML mapping with sorted keys under runs/…/run.yaml.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "shardvec/status.h"

namespace shardvec {

struct RunRecord {
  int format_version = 1;
  std::string run_id;
  std::string writer_type = "vector-shardvec";
  std::string status = "running";  // running | succeeded | failed
  std::string started_at;
  std::string updated_at;
  std::string lease_expires_at;
  std::string s3_prefix;
  std::string shard_prefix = "shards";
  std::string db_path_template = "db={db_id:05d}";
  std::optional<std::string> manifest_ref;
  std::optional<std::string> error_type;
  std::optional<std::string> error_message;
};

std::string EncodeRunRecord(const RunRecord& record);
// Reads the flat mapping EncodeRunRecord writes (and yaml.safe_dump's equivalent).
Result<RunRecord> ParseRunRecord(std::string_view yaml);

}  // namespace shardvec
