// The value rules every stored or queried vector obeys: finite components, and a direction under
// cosine (sqlite-vec returns NULL distances for a zero vector there).
#pragma once

#include <span>
#include <string_view>

#include "shardvec/status.h"
#include "shardvec/types.h"

namespace shardvec {

// `name` starts each message: "<name>[2] is nan (values must be finite)",
// "<name> is all zeros, which has no direction under the cosine metric".
Status CheckVectorValues(std::span<const float> vector, Metric metric, std::string_view name);

// At least one row, `dim` columns, rows x cols values, all finite; errors name `field`.
Status CheckMatrix(const Matrix& m, std::string_view field, int64_t dim);

}  // namespace shardvec
