// UTC timestamps in the formats the layout uses.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace shardvec {

using SystemTime = std::chrono::time_point<std::chrono::system_clock, std::chrono::microseconds>;

SystemTime NowUtc();
// "2026-11-24T21:36:00.123456Z": manifest keys, created_at, updated_at, run records.
std::string FormatTimestamp(SystemTime t);
// Parses the format above (also accepts "+00:00" and fewer fractional digits).
std::optional<SystemTime> ParseTimestamp(std::string_view text);

// Milliseconds on the monotonic clock since `t0`.
double MillisSince(std::chrono::steady_clock::time_point t0);

}  // namespace shardvec
