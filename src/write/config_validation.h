// Field rules of Validate(WriteConfig) that other inputs share (a distributed task's run id, a routing
// plan's matrices, a driver's training sample). CheckShardingFieldsTakeEffect is public (config.h).
#pragma once

#include <cstdint>
#include <string_view>

#include "common/vector_check.h"
#include "format/keys.h"  // CheckMatrix, which these rules share
#include "shardvec/config.h"
#include "shardvec/status.h"
#include "shardvec/types.h"

namespace shardvec {

// 1-128 characters of letters, digits, '.', '_' or '-' (it names folders and object keys).
Status ValidateRunId(std::string_view run_id);

// The object layout a write config asks for (checked by Validate).
KeyLayout LayoutOf(const WriteConfig& config);

}  // namespace shardvec
