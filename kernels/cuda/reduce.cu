/// @file kernels/cuda/reduce.cu @brief CUDA reductions over the middle axis of [outer, K, inner]: scaled sum (double accumulators), max/argmax, and the argmax scatter of max backward.
//
// Three shapes of work, chosen by the launcher:
//  - inner == 1 and short rows (K < kBlockRowMin): one warp per row, 8 rows per 256-thread block;
//  - inner == 1 and long rows: one 256-thread block per row (warp shuffles, then shared memory);
//  - inner > 1: one thread per (outer, inner) column looping over K, so a warp reads 32 consecutive
//    floats of each k-slice (coalesced).
// Sums accumulate in double like the CPU backend; max keeps the first index among equal maxima and
// propagates NaN (the first NaN wins), exactly as kernels/cpu/reduce.cpp.
#include <cmath>
#include <cstdint>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/index_math.h"
#include "kernels/cuda/warp_reduce.cuh"
#include "kernels/dispatch.h"
#include "kernels/reduce.h"

namespace ember::kernels::cuda_backend {
namespace {

using ember::cuda::ArgMax;
using ember::cuda::kWarpSize;

constexpr unsigned kThreads = 256;
constexpr unsigned kWarpsPerBlock = kThreads / kWarpSize;
constexpr int64_t kBlockRowMin = 4096;
constexpr int64_t kNoIndex = INT64_MAX;

/// Writes one reduced value (and its argmax) from the accumulators of op.
template <ReduceOp Op>
struct Acc;

template <>
struct Acc<ReduceOp::Sum> {
  double sum = 0.0;
  __device__ void add(float v, int64_t) { sum += static_cast<double>(v); }
  __device__ void store(float* out, int64_t* idx, int64_t at, double scale) const {
    out[at] = static_cast<float>(sum * scale);
    (void)idx;
  }
};

template <>
struct Acc<ReduceOp::Max> {
  ArgMax best{-INFINITY, kNoIndex};
  __device__ void add(float v, int64_t j) { best = ember::cuda::better(best, ArgMax{v, j}); }
  __device__ void store(float* out, int64_t* idx, int64_t at, double) const {
    out[at] = best.value;
    if (idx) idx[at] = best.index;
  }
};

__device__ inline void warp_combine(Acc<ReduceOp::Sum>& a) { a.sum = ember::cuda::warp_reduce(a.sum, ember::cuda::SumOp{}); }
__device__ inline void warp_combine(Acc<ReduceOp::Max>& a) {
  a.best = ember::cuda::warp_reduce(a.best, ember::cuda::ArgMaxOp{});
}

struct RowScratch {
  double sums[ember::cuda::kMaxWarps + 1];
  ArgMax args[ember::cuda::kMaxWarps + 1];
};

__device__ inline void block_combine(Acc<ReduceOp::Sum>& a, RowScratch& s) {
  a.sum = ember::cuda::block_reduce(a.sum, ember::cuda::SumOp{}, 0.0, s.sums);
}
__device__ inline void block_combine(Acc<ReduceOp::Max>& a, RowScratch& s) {
  a.best = ember::cuda::block_reduce(a.best, ember::cuda::ArgMaxOp{}, ArgMax{-INFINITY, kNoIndex}, s.args);
}

// ---------------------------------------------------------------------------------------- kernels

/// inner == 1, short rows: warp w of block b reduces rows b*8 + w, stepping by gridDim.x*8; lanes stride
/// over the row by 32. Grid min(ceil(rows/8), 8 per SM) x 256 threads, no shared memory.
/// Bytes: 4*rows*K read + 4*rows written (+8*rows for argmax).
template <ReduceOp Op>
__global__ void reduce_rows_warp_kernel(const float* x, int64_t rows, int64_t k, double scale, float* out,
                                        int64_t* idx) {
  const int64_t warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + warp; r < rows;
       r += static_cast<int64_t>(gridDim.x) * kWarpsPerBlock) {
    Acc<Op> acc;
    const float* row = x + r * k;
    for (int64_t j = lane; j < k; j += kWarpSize) acc.add(row[j], j);
    warp_combine(acc);
    if (lane == 0) acc.store(out, idx, r, scale);
  }
}

/// inner == 1, long rows: block b reduces rows b, b + gridDim.x, ...; threads stride over the row by
/// 256, then warp shuffles and a shared-memory step across the 8 warps. Grid min(rows, 8 per SM) x 256
/// threads, static shared RowScratch (~800 B). Bytes: as reduce_rows_warp_kernel.
template <ReduceOp Op>
__global__ void reduce_rows_block_kernel(const float* x, int64_t rows, int64_t k, double scale, float* out,
                                         int64_t* idx) {
  EMBER_SHARED(RowScratch, scratch);
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    Acc<Op> acc;
    const float* row = x + r * k;
    for (int64_t j = threadIdx.x; j < k; j += blockDim.x) acc.add(row[j], j);
    block_combine(acc, scratch);
    if (threadIdx.x == 0) acc.store(out, idx, r, scale);
  }
}

/// inner > 1: thread t handles column (o, i) = (t / inner, t % inner) and loops over K with stride
/// inner. Grid-stride over outer*inner, blocks of 256, no shared memory. Bytes: 4*outer*K*inner read +
/// 4*outer*inner written (+8*outer*inner for argmax).
template <ReduceOp Op>
__global__ void reduce_cols_kernel(const float* x, int64_t outer, int64_t k, int64_t inner, double scale, float* out,
                                   int64_t* idx) {
  const int64_t n = outer * inner;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < n;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t o = t / inner, i = t % inner;
    const float* col = x + o * k * inner + i;
    Acc<Op> acc;
    for (int64_t j = 0; j < k; ++j) acc.add(col[j * inner], j);
    acc.store(out, idx, t, scale);
  }
}

/// gx[o, idx[o, i], i] = gy[o, i] into a zeroed gx. Grid-stride over outer*inner, blocks of 256; Index
/// uint32_t ((o, i) by fast division) when the loop fits int32, else int64_t.
/// Bytes: 4*outer*inner (gy) + 8*outer*inner (idx) read + 4*outer*inner written.
template <class Index>
__global__ void max_scatter_kernel(const float* gy, const int64_t* idx, Index n, int64_t k,
                                   ember::cuda::Divisor<Index> inner, float* gx) {
  for (Index t = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; t < n;
       t += static_cast<Index>(gridDim.x) * blockDim.x) {
    const Index o = inner.div(t);
    const int64_t i = t - o * inner.divisor();
    gx[(static_cast<int64_t>(o) * k + idx[t]) * static_cast<int64_t>(inner.divisor()) + i] = gy[t];
  }
}

// -------------------------------------------------------------------------------------- launchers

using ember::cuda::check_f32;

template <ReduceOp Op>
void launch_reduce(const float* x, int64_t outer, int64_t k, int64_t inner, double scale, float* out, int64_t* idx) {
  const cudaStream_t s = ember::cuda::stream();
  if (inner > 1) {
    ember::cuda::launch(reduce_cols_kernel<Op>, ember::cuda::grid_for(outer * inner, kThreads), kThreads,
                        0, s, x, outer, k, inner, scale, out, idx);
    EMBER_CUDA_CHECK_LAUNCH("reduce_cols_kernel");
  } else if (k < kBlockRowMin) {
    ember::cuda::launch(reduce_rows_warp_kernel<Op>, ember::cuda::grid_for(outer, kWarpsPerBlock),
                        kThreads, 0, s, x, outer, k, scale, out, idx);
    EMBER_CUDA_CHECK_LAUNCH("reduce_rows_warp_kernel");
  } else {
    ember::cuda::launch(reduce_rows_block_kernel<Op>, ember::cuda::grid_for(outer, 1), kThreads, 0, s, x,
                        outer, k, scale, out, idx);
    EMBER_CUDA_CHECK_LAUNCH("reduce_rows_block_kernel");
  }
}

void reduce(ReduceOp op, const Tensor& x, int64_t outer, int64_t k, int64_t inner, double scale, Tensor& out,
            Tensor* indices) {
  check_f32(op == ReduceOp::Sum ? "sum" : "max", x);
  const float* xp = static_cast<const float*>(x.data_ptr());
  float* o = static_cast<float*>(out.data_ptr());
  int64_t* idx = indices ? static_cast<int64_t*>(indices->data_ptr()) : nullptr;
  if (op == ReduceOp::Sum) launch_reduce<ReduceOp::Sum>(xp, outer, k, inner, scale, o, nullptr);
  else launch_reduce<ReduceOp::Max>(xp, outer, k, inner, scale, o, idx);
}

void max_backward(const Tensor& gy, const Tensor& indices, int64_t outer, int64_t k, int64_t inner, Tensor& gx) {
  check_f32("max_backward", gy);
  const int64_t n = outer * inner;
  const unsigned blocks = ember::cuda::grid_for(n, kThreads);
  const bool fits32 = ember::cuda::fits_int32_loop(n, static_cast<int64_t>(blocks) * kThreads);
  ember::cuda::with_index_type(fits32, [&](auto index) {
    using Index = decltype(index);
    ember::cuda::launch(max_scatter_kernel<Index>, blocks, kThreads, 0, ember::cuda::stream(),
                        static_cast<const float*>(gy.data_ptr()), static_cast<const int64_t*>(indices.data_ptr()),
                        static_cast<Index>(n), k, ember::cuda::Divisor<Index>(inner),
                        static_cast<float*>(gx.data_ptr()));
    EMBER_CUDA_CHECK_LAUNCH("max_scatter_kernel");
  });
}

}  // namespace

const Registrar registrar([] {
  auto& t = table_for<ReduceKernels>(DeviceType::CUDA);
  t.reduce = reduce;
  t.max_backward = max_backward;
});

}  // namespace ember::kernels::cuda_backend
