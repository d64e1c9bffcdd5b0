// Minimal diagnostics to stderr. Warnings always print; debug lines only with SHARDVEC_LOG=debug.
#pragma once

#include <string_view>

namespace shardvec {

void LogWarning(std::string_view message);
void LogDebug(std::string_view message);

}  // namespace shardvec
