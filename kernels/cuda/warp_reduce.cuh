/// @file kernels/cuda/warp_reduce.cuh @brief Warp-shuffle and block reductions (sum, max, argmax) shared by the reduce and softmax kernels.
//
// Fixed combination trees (shfl_down by 16, 8, 4, 2, 1; then warp 0 over the per-warp partials), so a
// result depends only on the block size and the input, never on scheduling. Block sizes must be
// multiples of 32 (full-mask shuffles) and at most 1024.
#pragma once
#include <cstdint>

#include "kernels/cuda/common.cuh"

namespace ember::cuda {

inline constexpr unsigned kWarpSize = 32;
inline constexpr unsigned kFullMask = 0xffffffffu;
inline constexpr int kMaxWarps = 32;

/// A value and the index it came from; the better of two is the NaN, else the larger, with the lower
/// index on ties (the CPU backend's "first maximum, NaN propagates").
struct ArgMax {
  float value;
  int64_t index;
};

__device__ inline bool is_nan(float v) { return v != v; }

__device__ inline ArgMax better(ArgMax a, ArgMax b) {
  const bool an = is_nan(a.value), bn = is_nan(b.value);
  if (an != bn) return an ? a : b;
  if (!an && a.value != b.value) return a.value > b.value ? a : b;
  return a.index <= b.index ? a : b;
}

struct SumOp {
  template <class T>
  __device__ T operator()(T a, T b) const { return a + b; }
};
struct MaxOp {
  __device__ float operator()(float a, float b) const { return a > b || is_nan(a) ? a : b; }
};
struct ArgMaxOp {
  __device__ ArgMax operator()(ArgMax a, ArgMax b) const { return better(a, b); }
};

/// Lane 0 receives op over the 32 lanes.
template <class T, class Op>
__device__ inline T warp_reduce(T v, Op op) {
  for (unsigned off = kWarpSize / 2; off > 0; off /= 2) v = op(v, __shfl_down_sync(kFullMask, v, off));
  return v;
}

template <class Op>
__device__ inline ArgMax warp_reduce(ArgMax v, Op op) {
  for (unsigned off = kWarpSize / 2; off > 0; off /= 2) {
    const ArgMax other{__shfl_down_sync(kFullMask, v.value, off), __shfl_down_sync(kFullMask, v.index, off)};
    v = op(v, other);
  }
  return v;
}

/// Every thread of the block receives op over the block's values. `scratch` is __shared__ space for
/// kMaxWarps + 1 values owned by the caller; the call begins and ends with a barrier, so it can be
/// called again (e.g. per row) with the same scratch.
template <class T, class Op>
__device__ inline T block_reduce(T v, Op op, T identity, T* scratch) {
  const unsigned warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  const unsigned warps = blockDim.x / kWarpSize;
  __syncthreads();
  v = warp_reduce(v, op);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    T w = lane < warps ? scratch[lane] : identity;
    w = warp_reduce(w, op);
    if (lane == 0) scratch[kMaxWarps] = w;
  }
  __syncthreads();
  return scratch[kMaxWarps];
}

/// Block size for a kernel that gives one block to each row of n: n rounded up to a multiple of 32, at
/// most 256 (softmax, cross-entropy).
inline unsigned row_block_threads(int64_t n) {
  const int64_t t = (n + kWarpSize - 1) / kWarpSize * kWarpSize;
  return static_cast<unsigned>(t < 256 ? t : 256);
}

/// Grid for a kernel whose blocks loop over rows b, b + gridDim.x, ...: min(rows, loop_grid_cap()).
inline unsigned row_grid(int64_t rows) { return grid_for(rows, 1); }

}  // namespace ember::cuda
