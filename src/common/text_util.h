// Small text helpers shared across modules.
#pragma once

#include <string>
#include <string_view>

namespace shardvec {

// ASCII lowercase (bytes outside A-Z unchanged): for header names, schemes, file extensions,
// metric names and hex digests, never for user text.
std::string AsciiLower(std::string_view text);

}  // namespace shardvec
