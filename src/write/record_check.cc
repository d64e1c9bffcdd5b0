#include "write/record_check.h"

#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "common/json_text.h"

namespace shardvec {
namespace {

std::string Where(const Record& r, int64_t row) {
  return fmt::format("record id={} (row {})", RecordIdToString(r.id), row);
}

}  // namespace

Status CheckRecordVector(const Record& r, int64_t dim, Metric metric, int64_t row) {
  if (static_cast<int64_t>(r.vector.size()) != dim) {
    return Status::InvalidArgument(fmt::format("{}: vector has {} values, expected dim {}", Where(r, row),
                                               r.vector.size(), dim));
  }
  bool all_zero = true;
  for (size_t i = 0; i < r.vector.size(); ++i) {
    const float v = r.vector[i];
    if (!std::isfinite(v)) {
      return Status::InvalidArgument(
          fmt::format("{}: vector[{}] is {} (values must be finite)", Where(r, row), i, v));
    }
    all_zero = all_zero && v == 0.0f;
  }
  if (all_zero && metric == Metric::kCosine) {
    return Status::InvalidArgument(fmt::format(
        "{}: vector is all zeros, which has no direction under the cosine metric", Where(r, row)));
  }
  return Status::OK();
}

Result<std::optional<std::string>> CanonicalPayload(const Record& r, int64_t row) {
  if (!r.payload_json) return std::optional<std::string>();
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
  return std::optional<std::string>(PythonJsonDumps(parsed));
}

}  // namespace shardvec
