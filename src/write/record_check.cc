#include "write/record_check.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "common/json_text.h"
#include "common/text_util.h"
#include "common/status_macros.h"
#include "common/vector_check.h"
#include "routing/router.h"

namespace shardvec {
namespace {

std::string Where(const Record& r, int64_t row) {
  return fmt::format("record id={} (row {})", EscapeForDisplay(RecordIdToString(r.id)), row);
}

// A string id and the string values of the routing context are UTF-8: ids are stored as JSON text,
// and every piece of text the writer stores or reports must be valid JSON.
Status CheckRecordText(const Record& r, int64_t row) {
  if (const auto* id = std::get_if<std::string>(&r.id)) {
    if (Status st = CheckUtf8(*id, "id"); !st.ok()) return st.WithContext(fmt::format("row {}", row));
  }
  if (r.routing_context) {
    for (const auto& [name, value] : *r.routing_context) {
      const auto* text = std::get_if<std::string>(&value);
      if (text == nullptr) continue;
      if (Status st = CheckUtf8(*text, fmt::format("routing_context['{}']", EscapeForDisplay(name))); !st.ok()) {
        return st.WithContext(Where(r, row));
      }
    }
  }
  return Status::OK();
}

}  // namespace

Status CheckRecordVector(const Record& r, std::span<const float> vector, int64_t dim, Metric metric, int64_t row) {
  RETURN_IF_ERROR(CheckRecordText(r, row));
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
  if (Status st = CheckUtf8(*r.payload_json, "payload"); !st.ok()) return st.WithContext(Where(r, row));
  if (JsonNestsDeeperThan(*r.payload_json)) {
    return Status::InvalidArgument(fmt::format("{}: payload nests arrays/objects deeper than {} levels",
                                               Where(r, row), kMaxJsonNesting));
  }
  auto parsed = nlohmann::ordered_json::parse(*r.payload_json, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return Status::InvalidArgument(fmt::format("{}: payload is not valid JSON: '{}'", Where(r, row),
                                               EscapeForDisplay(r.payload_json->substr(0, 80))));
  }
  if (parsed.is_null()) return std::optional<std::string>();
  if (!parsed.is_object()) {
    return Status::InvalidArgument(fmt::format("{}: payload must be a JSON object, got '{}'",
                                               Where(r, row), EscapeForDisplay(r.payload_json->substr(0, 80))));
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
  if (!db.ok()) return db.status().WithMessage(fmt::format("{} at row {}", db.status().message(), row));
  return db;
}

}  // namespace shardvec
