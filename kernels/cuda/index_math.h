/// @file kernels/cuda/index_math.h @brief Index arithmetic of the CUDA kernels: the 32-bit fast-path selection and division by an invariant integer (multiply-high + shift), usable on host and device.
//
// Plain C++ (no CUDA headers), so the tests check the selection and the division on the host exactly
// as the kernels compute them. A 64-bit division or modulo is a ~70-instruction software routine on
// NVIDIA GPUs (a 32-bit one ~20), so kernels whose per-element index math divides (channel of an
// element, (n, c, h, w) of a flat index) are templated on the index type: the launcher picks the
// 32-bit instance with FastDivmod when every index fits (fits_int32_index), else the 64-bit one with
// plain division, which stays correct for tensors of 2^31 elements or more.
#pragma once
#include <cstdint>

#include "kernels/dispatch.h"
#include "kernels/strided.h"

#if defined(__CUDACC__)
#define EMBER_HOST_DEVICE __host__ __device__
#else
#define EMBER_HOST_DEVICE
#endif

namespace ember::cuda {

/// Largest value a 32-bit index path may see (dividends of FastDivmod must be below 2^31).
inline constexpr int64_t kMaxInt32Index = INT32_MAX;

/// True when every index in [0, n) and n itself fit the 32-bit fast path: n <= 2^31 - 1.
/// Launchers pass the largest value their kernel indexes or loops up to (the grid-stride loop's
/// i + stride must not wrap either: see fits_int32_loop).
inline bool fits_int32_index(int64_t n) { return n >= 0 && n <= kMaxInt32Index; }

/// True when a grid-stride loop over n elements with `stride` threads in the grid never forms an
/// index that overflows int32 (the last i + stride stays below 2^31).
inline bool fits_int32_loop(int64_t n, int64_t stride) { return fits_int32_index(n) && fits_int32_index(n + stride); }

/// n / d and n % d for a divisor fixed at launch, as a multiply-high and a shift (Granlund and
/// Montgomery's round-up method, as in CUTLASS's FastDivmod): for 1 <= d < 2^31 and 0 <= n < 2^31,
/// q = (mulhi(n, mul) + n) >> shift with shift = ceil(log2 d) and mul = floor(2^32 (2^shift - d) / d) + 1.
/// The sum mulhi + n stays below 2^32 because n < 2^31 and mulhi(n, mul) < n.
struct FastDivmod {
  uint32_t divisor = 1;
  uint32_t mul = 0;
  uint32_t shift = 0;

  FastDivmod() = default;
  /// Host side (launchers): d in [1, 2^31). A d below 1 (the extent of an empty dimension, which no
  /// index is divided by) gives the divisor 1, so that building the divisors of any shape is safe.
  explicit FastDivmod(int64_t d) : divisor(static_cast<uint32_t>(d < 1 ? 1 : d)) {
    while ((uint64_t{1} << shift) < divisor) ++shift;
    mul = static_cast<uint32_t>(((uint64_t{1} << 32) * ((uint64_t{1} << shift) - divisor)) / divisor + 1);
  }
  EMBER_HOST_DEVICE uint32_t div(uint32_t n) const {
    const uint32_t hi = static_cast<uint32_t>((static_cast<uint64_t>(n) * mul) >> 32);
    return (hi + n) >> shift;
  }
  EMBER_HOST_DEVICE uint32_t mod(uint32_t n) const { return n - div(n) * divisor; }
};

/// Division by a divisor fixed at launch, for the index type of a kernel instance: FastDivmod for
/// uint32_t, plain division for int64_t. Constructed on the host from the int64 divisor (>= 1).
template <class Index>
struct Divisor;

template <>
struct Divisor<uint32_t> {
  FastDivmod f;
  Divisor() = default;
  explicit Divisor(int64_t d) : f(d) {}
  EMBER_HOST_DEVICE uint32_t div(uint32_t n) const { return f.div(n); }
  EMBER_HOST_DEVICE uint32_t mod(uint32_t n) const { return f.mod(n); }
  EMBER_HOST_DEVICE uint32_t divisor() const { return f.divisor; }
};

template <>
struct Divisor<int64_t> {
  int64_t d = 1;
  Divisor() = default;
  explicit Divisor(int64_t divisor) : d(divisor) {}
  EMBER_HOST_DEVICE int64_t div(int64_t n) const { return n / d; }
  EMBER_HOST_DEVICE int64_t mod(int64_t n) const { return n % d; }
  EMBER_HOST_DEVICE int64_t divisor() const { return d; }
};

/// The channel (i / s) % c of flat element i of a contiguous [N, C, S] tensor.
template <class Index>
struct ChannelOf {
  Divisor<Index> s, c;
  ChannelOf(int64_t positions, int64_t channels) : s(positions), c(channels) {}
  EMBER_HOST_DEVICE Index operator()(Index i) const { return c.mod(s.div(i)); }
};

/// StridedDesc (kernels/strided.h) for a kernel instance's index type: the linear index is split into
/// coordinates by Divisor<Index> (fast division for uint32_t); the offset is summed in int64 either way,
/// since a view's offsets may exceed int32 even when its element count does not.
template <class Index>
struct StridedIndex {
  int32_t ndim = 0;
  Divisor<Index> sizes[kernels::kMaxDims];
  int64_t strides[kernels::kMaxDims] = {};

  StridedIndex() = default;
  explicit StridedIndex(const kernels::StridedDesc& d) : ndim(d.ndim) {
    for (int k = 0; k < d.ndim; ++k) {
      sizes[k] = Divisor<Index>(d.sizes[k]);
      strides[k] = d.strides[k];
    }
  }
  /// Element offset of linear (row-major) index i, as StridedDesc::offset_of.
  EMBER_HOST_DEVICE int64_t offset_of(Index i) const {
    int64_t off = 0;
    for (int k = ndim - 1; k >= 0; --k) {
      const Index q = sizes[k].div(i);
      off += static_cast<int64_t>(i - q * sizes[k].divisor()) * strides[k];
      i = q;
    }
    return off;
  }
};

/// Test-only override of the index-type choice (testing::ScopedInt64Index): a table shared by the test
/// binary and the backend library, as kernels::table_for tables are.
struct IndexPathOverride {
  bool force_int64 = false;
};

/// The launchers' final choice: the 32-bit path when the sizes allow it (`fits32`) and no test forces the
/// 64-bit one.
inline bool use_int32_index(bool fits32) {
  return fits32 && !kernels::table_for<IndexPathOverride>(DeviceType::CUDA).force_int64;
}

/// Calls f(uint32_t{}) when use_int32_index(fits32) (fits32: the launcher's fits_int32_index /
/// fits_int32_loop answer), else f(int64_t{}): the launcher's lambda instantiates and launches its
/// kernel for that index type.
template <class F>
void with_index_type(bool fits32, F&& f) {
  if (use_int32_index(fits32)) {
    f(uint32_t{});
  } else {
    f(int64_t{});
  }
}

namespace testing {

/// While it lives, every launcher with a 32-bit index path takes its 64-bit instance instead, so the
/// tests run the code that only tensors of 2^31 elements or more reach. Not for concurrent use.
class ScopedInt64Index {
 public:
  ScopedInt64Index() : saved_(kernels::table_for<IndexPathOverride>(DeviceType::CUDA).force_int64) {
    kernels::table_for<IndexPathOverride>(DeviceType::CUDA).force_int64 = true;
  }
  ~ScopedInt64Index() { kernels::table_for<IndexPathOverride>(DeviceType::CUDA).force_int64 = saved_; }
  ScopedInt64Index(const ScopedInt64Index&) = delete;
  ScopedInt64Index& operator=(const ScopedInt64Index&) = delete;

 private:
  bool saved_;
};

}  // namespace testing

}  // namespace ember::cuda
