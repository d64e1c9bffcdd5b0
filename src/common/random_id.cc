#include "common/random_id.h"

#include <fmt/format.h>

#include <cstdint>
#include <mutex>
#include <random>

namespace shardvec {

std::string NewUuidHex() {
  static std::mutex mu;
  static std::mt19937_64 rng{std::random_device{}()};
  uint64_t hi, lo;
  {
    std::lock_guard<std::mutex> lock(mu);
    hi = rng();
    lo = rng();
  }
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // RFC 4122 variant
  return fmt::format("{:016x}{:016x}", hi, lo);
}

}  // namespace shardvec
