// Random identifiers (uuid4 as 32 lowercase hex digits) for run ids and checkpoint ids.
#pragma once

#include <string>

namespace shardvec {

std::string NewUuidHex();

}  // namespace shardvec
