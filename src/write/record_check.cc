#include "write/record_check.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "common/json_text.h"
#include "common/vector_check.h"
#include "routing/router.h"

namespace shardvec {
namespace {

std::string Where(const Record& r, int64_t row) {
  return fmt::format("record id={} (row {})", RecordIdToString(r.id), row);
}

}  // namespace

Status CheckRecordVector(const Record& r, std::span<const float> vector, int64_t dim, Metric metric, int64_t row) {
  if (static_cast<int64_t>(vector.size()) != dim) {
    return Status::InvalidArgument(fmt::format("{}: vector has {} values, expected dim {}", Where(r, row),
                                               vector.size(), dim));
  }
  Status st = CheckVectorValues(vector, metric, "vector");
  // The record's name is formatted only on failure: this runs once per written row.
  return st.ok() ? st : st.WithContext(Where(r, row));
}

Result<std::optional<std::string>> CanonicalPayload(const Record& r, int64_t row) {
  if (!r.payload_json) return std::optional<std::string>();
  if (JsonNestsDeeperThan(*r.payload_json)) {
    return Status::InvalidArgument(fmt::format("{}: payload nests arrays/objects deeper than {} levels",
                                               Where(r, row), kMaxJsonNesting));
  }
  auto parsed = nlohmann::ordered_json::parse(*r.payload_json, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return Status::InvalidArgument(fmt::format("{}: payload is not valid JSON: '{}'", Where(r, row),
                                               r.payload_json->substr(0, 80)));
  }
  if (parsed.is_null()) return std::optional<std::string>();
  if (!parsed.is_object()) {
    return Status::InvalidArgument(fmt::format("{}: payload must be a JSON object, got '{}'",
                                               Where(r, row), r.payload_json->substr(0, 80)));
  }
  std::string stored = PythonJsonDumps(parsed);
  if (stored.size() > kMaxPayloadBytes) {
    return Status::InvalidArgument(fmt::format("{}: payload is {} bytes, above the limit of {} bytes (16 MiB)",
                                               Where(r, row), stored.size(), kMaxPayloadBytes));
  }
  return std::optional<std::string>(std::move(stored));
}

Result<int64_t> AssignRecord(const Router& router, const Record& r, std::span<const float> vector, int64_t row) {
  Result<int64_t> db = router.Assign(r, vector);
  if (!db.ok()) return Status(db.status().code(), fmt::format("{} at row {}", db.status().message(), row));
  return db;
}

}  // namespace shardvec
