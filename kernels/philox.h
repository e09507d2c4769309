/// @file kernels/philox.h @brief Philox4x32-10 counter-based RNG and uniform/normal transforms, identical on host and device.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/strided.h"  // EMBER_HD

namespace ember::kernels {

struct Philox4 {
  uint32_t v[4];
};

/// Philox4x32-10 (Salmon et al. 2011) of counter (ctr_lo, ctr_hi) under a 64-bit key.
EMBER_HD inline Philox4 philox4x32(uint64_t key, uint64_t counter) {
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int r = 0; r < 10; ++r) {
    const uint64_t p0 = static_cast<uint64_t>(0xD2511F53u) * c0;
    const uint64_t p1 = static_cast<uint64_t>(0xCD9E8D57u) * c2;
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return Philox4{{c0, c1, c2, c3}};
}

/// Uniform in [0, 1) from 24 random bits (exactly representable in float).
EMBER_HD inline float uint_to_unit_float(uint32_t x) { return static_cast<float>(x >> 8) * (1.0f / 16777216.0f); }
/// Uniform in (0, 1] for Box-Muller's log.
EMBER_HD inline float uint_to_open_unit_float(uint32_t x) {
  return (static_cast<float>(x >> 8) + 1.0f) * (1.0f / 16777216.0f);
}

/// Element i of a draw with (seed, offset): group g = (offset + i) / 4 of Philox, lane (offset + i) % 4.
/// Normal draws use Box-Muller on lanes (0,1) -> elements 0,1 and (2,3) -> elements 2,3 of the group.
/// The transforms are computed in double so that host and device round identically.
EMBER_HD inline float philox_uniform(uint64_t seed, uint64_t offset, uint64_t i) {
  const uint64_t n = offset + i;
  const Philox4 r = philox4x32(seed, n >> 2);
  return uint_to_unit_float(r.v[n & 3]);
}

EMBER_HD inline float philox_normal(uint64_t seed, uint64_t offset, uint64_t i) {
  const uint64_t n = offset + i;
  const Philox4 r = philox4x32(seed, n >> 2);
  const unsigned lane = static_cast<unsigned>(n & 3), pair = lane & 2u;
  const double u1 = static_cast<double>(uint_to_open_unit_float(r.v[pair]));
  const double u2 = static_cast<double>(uint_to_unit_float(r.v[pair + 1]));
  // ::-qualified: inside namespace ember, unqualified log/sqrt/sin/cos would find the Tensor ops
  // (ops/elementwise.h) first when a file includes both headers.
  const double radius = ::sqrt(-2.0 * ::log(u1));
  const double theta = 6.283185307179586 * u2;
  return static_cast<float>((lane & 1u) ? radius * ::sin(theta) : radius * ::cos(theta));
}

}  // namespace ember::kernels
