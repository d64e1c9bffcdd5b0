// Field rules of Validate(WriteConfig) that other inputs share (a distributed task's run id, a routing
// plan's matrices, a driver's training sample).
#pragma once

#include <cstdint>
#include <string_view>

#include "shardvec/status.h"
#include "shardvec/types.h"

namespace shardvec {

// 1-128 characters of letters, digits, '.', '_' or '-' (it names folders and object keys).
Status ValidateRunId(std::string_view run_id);
// At least one row, `dim` columns, rows x cols values, all finite; errors name `field`.
Status CheckMatrix(const Matrix& m, std::string_view field, int64_t dim);

}  // namespace shardvec
