// IEEE 754 binary16 (float16, "half") to float32. Every half value is exactly representable as a
// float, so the conversion loses nothing: normals, subnormals, zeros of both signs, infinities and
// NaNs (payload kept) map to the float of the same value. Used by the .npy reader ('<f2') and the
// Arrow/Parquet reader (halffloat): the stored format stays float32.
#pragma once

#include <bit>
#include <cstdint>

namespace shardvec {

constexpr float HalfToFloat(uint16_t half) {
  const uint32_t sign = static_cast<uint32_t>(half & 0x8000u) << 16;
  const uint32_t exponent = (half >> 10) & 0x1fu;
  uint32_t mantissa = half & 0x3ffu;
  if (exponent == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));  // inf, NaN
  if (exponent != 0) return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
  if (mantissa == 0) return std::bit_cast<float>(sign);  // +-0
  // Subnormal half: normalise the mantissa into a float's implicit leading bit.
  uint32_t float_exponent = 113;  // 127 - 15 + 1
  while ((mantissa & 0x400u) == 0) {
    mantissa <<= 1;
    --float_exponent;
  }
  return std::bit_cast<float>(sign | (float_exponent << 23) | ((mantissa & 0x3ffu) << 13));
}

}  // namespace shardvec
