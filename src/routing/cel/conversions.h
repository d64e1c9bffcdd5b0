// Text <-> number conversions with cel-cpp's exact behaviour: int()/uint() parse like
// absl::SimpleAtoi, double() like strtod, string(double) prints the shortest round-trip digits with
// %g's switch to exponent form (1e+06, 1.23456789e+08, 1e-05, 0.0001, 100000).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace shardvec::cel {

// Large enough for any FormatDouble / FormatInt output.
inline constexpr size_t kNumberBufSize = 64;

size_t FormatDouble(double v, char* buf);
size_t FormatInt(int64_t v, char* buf);
size_t FormatUint(uint64_t v, char* buf);

bool ParseIntText(std::string_view text, int64_t& out);
bool ParseUintText(std::string_view text, uint64_t& out);
bool ParseDoubleText(std::string_view text, double& out);
// "1", "t", "true", "TRUE", "True" and "0", "f", "false", "FALSE", "False", as cel-cpp.
bool ParseBoolText(std::string_view text, bool& out);

}  // namespace shardvec::cel
