/// @file kernels/strided.h @brief StridedDesc: shape + element strides of an operand, passed by value to kernels (host and device).
#pragma once
#include <cstdint>

#ifdef __CUDACC__
#define EMBER_HD __host__ __device__
#else
#define EMBER_HD
#endif

namespace ember::kernels {

inline constexpr int kMaxDims = 8;

/// Logical shape and strides (in elements) of a tensor view; broadcast dims have stride 0.
struct StridedDesc {
  int32_t ndim = 0;
  int64_t sizes[kMaxDims] = {};
  int64_t strides[kMaxDims] = {};

  /// Element offset of the linear (row-major) index `i` of the logical shape.
  EMBER_HD int64_t offset_of(int64_t i) const {
    int64_t off = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      const int64_t s = sizes[d];
      off += (i % s) * strides[d];
      i /= s;
    }
    return off;
  }
};

}  // namespace ember::kernels
