/// @file kernels/cuda/softmax.cu @brief CUDA row-wise softmax / log-softmax and the fused causal softmax of attention (max-subtracted, double row sums), forward and backward, one block per row.
//
// Block size: the row length rounded up to a multiple of 32, at most 256; a block loops over rows
// b, b + gridDim.x, ... (grid capped at 8 blocks per SM). Row reductions use warp shuffles and then
// the per-warp partials in shared memory (kernels/cuda/warp_reduce.cuh). Row sums accumulate in
// double as in kernels/cpu/softmax.cpp; exponentials are expf (the CPU uses exp in double for the
// sum), so values agree to a few float ulps.
//
// The causal kernels fuse attention's scale, causal mask and softmax into one pass over a [..., T, T]
// score tensor: row r is query position i = r % T of its matrix, its keys j <= i are read, and the
// masked keys j > i are written as exact zeros without being read (no -inf fill, no separate scale
// or mask pass). scale * x is rounded before the max is subtracted (__fmul_rn: no FMA), as on the CPU.
#include <cmath>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/warp_reduce.cuh"
#include "kernels/dispatch.h"
#include "kernels/softmax.h"

namespace ember::kernels::cuda_backend {
namespace {

struct RowScratch {
  float maxes[ember::cuda::kMaxWarps + 1];
  double sums[ember::cuda::kMaxWarps + 1];
};

// ---------------------------------------------------------------------------------------- kernels

/// y = softmax(x) or log_softmax(x) per row of n: pass 1 row max, pass 2 sum of expf(x - max) in
/// double, pass 3 write. Grid min(rows, 8 per SM) x row_block_threads(n), static shared RowScratch.
/// Bytes: 8 * rows * n (x from DRAM once, its re-reads hit L1/L2 for rows of a few KiB; y written).
__global__ void softmax_forward_kernel(const float* x, float* y, int64_t rows, int64_t n, bool log) {
  EMBER_SHARED(RowScratch, scratch);
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    float mx = -INFINITY;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) mx = ember::cuda::MaxOp{}(mx, xr[j]);
    mx = ember::cuda::block_reduce(mx, ember::cuda::MaxOp{}, -INFINITY, scratch.maxes);
    double s = 0.0;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) s += static_cast<double>(expf(xr[j] - mx));
    s = ember::cuda::block_reduce(s, ember::cuda::SumOp{}, 0.0, scratch.sums);
    if (log) {
      const float lse = static_cast<float>(::log(s));
      for (int64_t j = threadIdx.x; j < n; j += blockDim.x) yr[j] = xr[j] - mx - lse;
    } else {
      const float inv = static_cast<float>(1.0 / s);
      for (int64_t j = threadIdx.x; j < n; j += blockDim.x) yr[j] = expf(xr[j] - mx) * inv;
    }
  }
}

/// gx = y * (gy - sum(gy * y)) (softmax) or gy - exp(y) * sum(gy) (log_softmax) per row: pass 1 the
/// row sum in double, pass 2 write. Grid and block as softmax_forward_kernel.
/// Bytes: 12 * rows * n (y and gy from DRAM once, re-read from cache; gx written).
__global__ void softmax_backward_kernel(const float* y, const float* gy, float* gx, int64_t rows, int64_t n, bool log) {
  EMBER_SHARED(RowScratch, scratch);
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* yr = y + r * n;
    const float* gr = gy + r * n;
    float* o = gx + r * n;
    double s = 0.0;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x)
      s += log ? static_cast<double>(gr[j]) : static_cast<double>(gr[j] * yr[j]);
    const float st = static_cast<float>(ember::cuda::block_reduce(s, ember::cuda::SumOp{}, 0.0, scratch.sums));
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x)  // __fmul_rn: no FMA, rounds as the CPU
      o[j] = log ? gr[j] - __fmul_rn(expf(yr[j]), st) : yr[j] * (gr[j] - st);
  }
}

/// Causal softmax forward over rows of T (row r: query i = r % T, n = i + 1 unmasked keys): pass 1
/// the max of scale * x over j < n, pass 2 the sum of expf(scale * x - max) in double, pass 3 writes
/// y[j] for every j < T (0 for j >= n). Grid min(rows, 8 per SM) x row_block_threads(T), static shared
/// RowScratch. Bytes per T x T matrix: 4 * T(T+1)/2 read (the unmasked triangle, once from DRAM, its
/// re-reads hit L1/L2) + 4 * T^2 written, i.e. 6 * T^2 (+2T).
__global__ void causal_softmax_forward_kernel(const float* x, float* y, int64_t rows, int64_t t, float scale) {
  EMBER_SHARED(RowScratch, scratch);
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t n = r % t + 1;
    const float* xr = x + r * t;
    float* yr = y + r * t;
    float mx = -INFINITY;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) mx = ember::cuda::MaxOp{}(mx, __fmul_rn(scale, xr[j]));
    mx = ember::cuda::block_reduce(mx, ember::cuda::MaxOp{}, -INFINITY, scratch.maxes);
    double s = 0.0;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) s += static_cast<double>(expf(__fmul_rn(scale, xr[j]) - mx));
    s = ember::cuda::block_reduce(s, ember::cuda::SumOp{}, 0.0, scratch.sums);
    const float inv = static_cast<float>(1.0 / s);
    for (int64_t j = threadIdx.x; j < t; j += blockDim.x) yr[j] = j < n ? expf(__fmul_rn(scale, xr[j]) - mx) * inv : 0.0f;
  }
}

/// Causal softmax backward: gx[j] = scale * y[j] * (gy[j] - sum_{j' < n} y gy) for j < n, 0 for
/// n <= j < T; pass 1 the row sum in double over the unmasked keys, pass 2 writes the whole row. Grid
/// and block as the forward. Bytes per T x T matrix: 8 * T(T+1)/2 read (y and gy, unmasked triangle)
/// + 4 * T^2 written, i.e. 8 * T^2 (+4T).
__global__ void causal_softmax_backward_kernel(const float* y, const float* gy, float* gx, int64_t rows, int64_t t,
                                               float scale) {
  EMBER_SHARED(RowScratch, scratch);
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t n = r % t + 1;
    const float* yr = y + r * t;
    const float* gr = gy + r * t;
    float* o = gx + r * t;
    double s = 0.0;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) s += static_cast<double>(gr[j] * yr[j]);
    const float st = static_cast<float>(ember::cuda::block_reduce(s, ember::cuda::SumOp{}, 0.0, scratch.sums));
    for (int64_t j = threadIdx.x; j < t; j += blockDim.x) o[j] = j < n ? scale * (yr[j] * (gr[j] - st)) : 0.0f;
  }
}

// -------------------------------------------------------------------------------------- launchers

using ember::cuda::check_f32;

void forward(const Tensor& x, Tensor& y, bool log) {
  check_f32(log ? "log_softmax" : "softmax", x);
  const int64_t n = x.size(-1), rows = x.numel() / n;
  ember::cuda::launch(softmax_forward_kernel, ember::cuda::row_grid(rows), ember::cuda::row_block_threads(n), 0,
                      ember::cuda::stream(), static_cast<const float*>(x.data_ptr()), static_cast<float*>(y.data_ptr()),
                      rows, n, log);
  EMBER_CUDA_CHECK_LAUNCH("softmax_forward_kernel");
}

void backward(const Tensor& y, const Tensor& gy, Tensor& gx, bool log) {
  check_f32(log ? "log_softmax backward" : "softmax backward", y);
  const int64_t n = y.size(-1), rows = y.numel() / n;
  ember::cuda::launch(softmax_backward_kernel, ember::cuda::row_grid(rows), ember::cuda::row_block_threads(n), 0,
                      ember::cuda::stream(), static_cast<const float*>(y.data_ptr()),
                      static_cast<const float*>(gy.data_ptr()), static_cast<float*>(gx.data_ptr()), rows, n, log);
  EMBER_CUDA_CHECK_LAUNCH("softmax_backward_kernel");
}

void causal_forward(const Tensor& x, Tensor& y, double scale) {
  check_f32("causal_softmax", x);
  const int64_t t = x.size(-1), rows = x.numel() / t;
  ember::cuda::launch(causal_softmax_forward_kernel, ember::cuda::row_grid(rows), ember::cuda::row_block_threads(t), 0,
                      ember::cuda::stream(), static_cast<const float*>(x.data_ptr()), static_cast<float*>(y.data_ptr()),
                      rows, t, static_cast<float>(scale));
  EMBER_CUDA_CHECK_LAUNCH("causal_softmax_forward_kernel");
}

void causal_backward(const Tensor& y, const Tensor& gy, Tensor& gx, double scale) {
  check_f32("causal_softmax backward", y);
  const int64_t t = y.size(-1), rows = y.numel() / t;
  ember::cuda::launch(causal_softmax_backward_kernel, ember::cuda::row_grid(rows), ember::cuda::row_block_threads(t), 0,
                      ember::cuda::stream(), static_cast<const float*>(y.data_ptr()),
                      static_cast<const float*>(gy.data_ptr()), static_cast<float*>(gx.data_ptr()), rows, t,
                      static_cast<float>(scale));
  EMBER_CUDA_CHECK_LAUNCH("causal_softmax_backward_kernel");
}

}  // namespace

const Registrar registrar([] {
  auto& t = table_for<SoftmaxKernels>(DeviceType::CUDA);
  t.forward = forward;
  t.backward = backward;
  t.causal_forward = causal_forward;
  t.causal_backward = causal_backward;
});

}  // namespace ember::kernels::cuda_backend
