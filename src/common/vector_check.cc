#include "common/vector_check.h"

#include <fmt/format.h>

#include <cmath>

namespace shardvec {

Status CheckVectorValues(std::span<const float> vector, Metric metric, std::string_view name) {
  bool all_zero = true;
  for (size_t i = 0; i < vector.size(); ++i) {
    if (!std::isfinite(vector[i])) {
      return Status::InvalidArgument(
          fmt::format("{}[{}] is {} (values must be finite)", name, i, vector[i]));
    }
    all_zero = all_zero && vector[i] == 0.0f;
  }
  if (all_zero && metric == Metric::kCosine) {
    return Status::InvalidArgument(
        fmt::format("{} is all zeros, which has no direction under the cosine metric", name));
  }
  return Status::OK();
}

}  // namespace shardvec
