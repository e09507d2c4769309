/// @file kernels/cuda/layernorm.cu @brief CUDA layer norm over the last dim: fused forward (one block per row, one-pass Welford statistics merged by Chan's formula, saves mean/rstd) and fused backward (dx per row, dweight/dbias from per-chunk partials added in chunk order by a second pass; no atomics).
//
// x is viewed as [rows, n] (contiguous). Forward: a block per row (blocks loop over rows b, b +
// gridDim.x, ...; grid min(rows, 8 per SM)), row_block_threads(n) threads (n rounded up to a warp, at
// most 256: a longer row is strided over, thread t taking values t, t + blockDim.x, ...). Each thread
// keeps an f32 Welford (count, mean, M2) of its values minus the row's first value; the lanes of a warp merge theirs by Chan's
// formula through shuffles, warp 0 merges the warps' triples from shared memory: a fixed tree, so the
// statistics depend only on n and the block size (never on the schedule), and no value is ever squared
// before its mean is subtracted (inputs like 1e4 + U[-1, 1] keep their variance).
// Backward: the rows are cut into `chunks` chunks of `len` consecutive rows (plan_chunks: a function of
// the shape only). Stage 1 gives a block to each chunk (blocks loop over chunks); for each row of its
// chunk the block reduces sum g and sum g * xhat (g = dy * w) in double with block_reduce's fixed trees,
// writes dx, and thread t adds dy * xhat and dy of its columns (t, t + blockDim.x, ...) into the chunk's
// own partial row in global memory (double; only that thread ever touches those columns, rows in
// order). Stage 2 gives a thread to each column and adds the chunks' partials in chunk order. So
// dweight/dbias are the same bits on every run, schedule, grid cap and GPU.
// The per-element expressions round as kernels/cpu/layernorm.cpp rounds them (explicit fmaf and
// __fmul_rn, which nvcc does not contract).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/device_scratch.h"
#include "kernels/cuda/warp_reduce.cuh"
#include "kernels/dispatch.h"
#include "kernels/layernorm.h"

namespace ember::kernels::cuda_backend {
namespace {

using ember::cuda::kFullMask;
using ember::cuda::kMaxWarps;
using ember::cuda::kWarpSize;

constexpr unsigned kParamThreads = 256;  // stage 2 of the backward

/// How the backward cuts the rows: `chunks` chunks of `len` rows (the last may be shorter). At least
/// kMinChunkRows rows per chunk (the partials are written once per chunk: 16 * n bytes against 12 * n
/// per row of dy, x and dx) and at most kMaxChunks (8 blocks per SM of a 132-SM GPU). Shape only.
constexpr int64_t kMinChunkRows = 16;
constexpr int64_t kMaxChunks = 1024;

RowChunks plan_chunks(int64_t rows) { return plan_row_chunks(rows, kMinChunkRows, kMaxChunks); }

/// Running (count, mean, M2) of a thread's, warp's or row's values (a row holds < 2^31 values: checked
/// by the launcher).
struct Welford {
  int count;
  float mean;
  float m2;
};

/// Adds one value (Welford's update).
__device__ inline Welford welford_add(Welford a, float v) {
  a.count += 1;
  const float d = v - a.mean;
  a.mean += d / static_cast<float>(a.count);
  a.m2 += d * (v - a.mean);
  return a;
}

/// The statistics of the union of two disjoint sets (Chan et al.'s parallel formula).
__device__ inline Welford welford_merge(Welford a, Welford b) {
  if (b.count == 0) return a;
  if (a.count == 0) return b;
  const int n = a.count + b.count;
  const float delta = b.mean - a.mean;
  const float wb = static_cast<float>(b.count) / static_cast<float>(n);
  return Welford{n, a.mean + delta * wb, a.m2 + b.m2 + delta * delta * static_cast<float>(a.count) * wb};
}

/// Lane 0 receives the merge of the warp's 32 triples.
__device__ inline Welford warp_merge(Welford w) {
  for (unsigned off = kWarpSize / 2; off > 0; off /= 2) {
    const Welford other{__shfl_down_sync(kFullMask, w.count, off), __shfl_down_sync(kFullMask, w.mean, off),
                        __shfl_down_sync(kFullMask, w.m2, off)};
    w = welford_merge(w, other);
  }
  return w;
}

struct ForwardScratch {
  Welford warps[kMaxWarps];
  float mean, rstd;
};

// ---------------------------------------------------------------------------------------- kernels

/// Per row r: the Welford statistics of its n values shifted by the row's first value (thread-strided,
/// merged over the warp by shuffles and over the warps through shared memory; the shift keeps the f32
/// running means small, so mean[r] = x[0] + mean(x - x[0]) is rounded about once even for a large
/// offset), rstd[r] = 1 / sqrt(M2 / n + eps) (in double, as the CPU), then y = fmaf((x - mean) * rstd, w, b) (w/b null: 1/0). Grid min(rows, 8*SM) (or the
/// test cap), blocks looping over rows; block row_block_threads(n) (32..256), static shared memory 32
/// triples + 8 B (~392 B). Bytes: 8 * rows * n (x read once from DRAM, re-read from L1/L2; y written)
/// + 8 * n (w, b; cached) + 8 * rows (mean, rstd).
__global__ void ln_forward_kernel(const float* x, const float* w, const float* b, double eps, int64_t rows, int64_t n,
                                  float* y, float* mean, float* rstd) {
  EMBER_SHARED(ForwardScratch, scratch);
  const unsigned warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize, warps = blockDim.x / kWarpSize;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* xr = x + r * n;
    const float shift = xr[0];  // statistics of x - x[0]: a large common offset never enters the updates
    Welford s{0, 0.0f, 0.0f};
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) s = welford_add(s, xr[j] - shift);
    s = warp_merge(s);
    __syncthreads();  // every thread has read the previous row's mean/rstd from `scratch`
    if (lane == 0) scratch.warps[warp] = s;
    __syncthreads();
    if (warp == 0) {
      s = lane < warps ? scratch.warps[lane] : Welford{0, 0.0f, 0.0f};
      s = warp_merge(s);
      if (lane == 0) {
        const float rs = static_cast<float>(1.0 / ::sqrt(static_cast<double>(s.m2) / static_cast<double>(n) + eps));
        const float mu = shift + s.mean;
        scratch.mean = mu;
        scratch.rstd = rs;
        mean[r] = mu;
        rstd[r] = rs;
      }
    }
    __syncthreads();
    const float mu = scratch.mean, rs = scratch.rstd;
    float* yr = y + r * n;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x)
      yr[j] = fmaf((xr[j] - mu) * rs, w ? w[j] : 1.0f, b ? b[j] : 0.0f);
  }
}

/// Stage 1 of the backward: a block per chunk of plan_chunks (blocks loop over chunks). For each row of
/// the chunk, with xhat = (x - mean) * rstd and g = dy * w: when dx is not null, sum g and sum g * xhat
/// in double (block_reduce), then dx = fmaf(-xhat, mean(g * xhat), g - mean(g)) * rstd; when partials
/// is not null, thread t adds dy * xhat and dy (double) of its columns into partials[2 * chunk] and
/// partials[2 * chunk + 1] (rows of n; the chunk's first row writes them). Grid min(chunks, 8*SM) (or the
/// test cap) x row_block_threads(n), static shared memory 33 doubles (264 B).
/// Bytes: 12 * rows * n (dy, x read; dx written) + 16 * n * chunks written (partials; their per-row
/// re-reads hit L1/L2) + 4 * n (w, cached) + 8 * rows.
__global__ void ln_backward_kernel(const float* dy, const float* x, const float* mean, const float* rstd,
                                   const float* w, int64_t rows, int64_t n, int64_t chunks, int64_t len, float* dx,
                                   double* partials) {
  EMBER_SHARED(double[kMaxWarps + 1], scratch);
  const double inv_n = 1.0 / static_cast<double>(n);
  for (int64_t c = blockIdx.x; c < chunks; c += gridDim.x) {
    double* pw = partials ? partials + 2 * c * n : nullptr;
    double* pb = partials ? pw + n : nullptr;
    const int64_t r0 = c * len, r1 = r0 + len < rows ? r0 + len : rows;
    for (int64_t r = r0; r < r1; ++r) {
      const float* g = dy + r * n;
      const float* xr = x + r * n;
      const float mu = mean[r], rs = rstd[r];
      double s1 = 0.0, s2 = 0.0;
      for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
        const float xhat = (xr[j] - mu) * rs;
        const float gw = w ? __fmul_rn(g[j], w[j]) : g[j];
        s1 += static_cast<double>(gw);
        s2 += static_cast<double>(gw) * static_cast<double>(xhat);
        if (pw) {
          const double a = static_cast<double>(g[j]) * static_cast<double>(xhat), b = static_cast<double>(g[j]);
          pw[j] = r == r0 ? a : pw[j] + a;
          pb[j] = r == r0 ? b : pb[j] + b;
        }
      }
      if (!dx) continue;  // uniform over the block
      const float c1 = static_cast<float>(ember::cuda::block_reduce(s1, ember::cuda::SumOp{}, 0.0, scratch) * inv_n);
      const float c2 = static_cast<float>(ember::cuda::block_reduce(s2, ember::cuda::SumOp{}, 0.0, scratch) * inv_n);
      float* o = dx + r * n;
      for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
        const float xhat = (xr[j] - mu) * rs;
        const float gw = w ? __fmul_rn(g[j], w[j]) : g[j];
        o[j] = fmaf(-xhat, c2, gw - c1) * rs;
      }
    }
  }
}

/// Stage 2 of the backward: a thread per column j (grid-stride) adds the chunks' partials in chunk order
/// (double) and writes dweight[j] and dbias[j] (either may be null). Grid min(ceil(n / 256), 8*SM) x 256,
/// no shared memory. Bytes: 16 * n * chunks read + 8 * n written.
__global__ void ln_backward_params_kernel(const double* partials, int64_t chunks, int64_t n, float* dweight,
                                          float* dbias) {
  for (int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < n;
       j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    double sw = 0.0, sb = 0.0;
    for (int64_t c = 0; c < chunks; ++c) {
      sw += partials[2 * c * n + j];
      sb += partials[2 * c * n + n + j];
    }
    if (dweight) dweight[j] = static_cast<float>(sw);
    if (dbias) dbias[j] = static_cast<float>(sb);
  }
}

// -------------------------------------------------------------------------------------- launchers

using ember::cuda::check_f32;

const float* cptr(const Tensor& t) { return t.defined() ? static_cast<const float*>(t.data_ptr()) : nullptr; }
float* mptr(Tensor* t) { return t ? static_cast<float*>(t->data_ptr()) : nullptr; }

void check_row_length(const char* op, const LayerNormShape& sh) {
  EMBER_CHECK(sh.n <= INT32_MAX, op, ": rows of ", sh.n, " values exceed the CUDA kernel's 32-bit Welford count");
}

void forward(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, const LayerNormShape& sh,
             Tensor& y, Tensor& mean, Tensor& rstd) {
  check_f32("layer_norm", x);
  check_row_length("layer_norm", sh);
  ember::cuda::launch(ln_forward_kernel, ember::cuda::row_grid(sh.rows), ember::cuda::row_block_threads(sh.n), 0,
                      ember::cuda::stream(), cptr(x), cptr(weight), cptr(bias), eps, sh.rows, sh.n, mptr(&y),
                      mptr(&mean), mptr(&rstd));
  EMBER_CUDA_CHECK_LAUNCH("ln_forward_kernel");
}

void backward(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& rstd, const Tensor& weight,
              const LayerNormShape& sh, Tensor* dx, Tensor* dweight, Tensor* dbias) {
  check_f32("layer_norm backward", x);
  const RowChunks plan = plan_chunks(sh.rows);
  const bool params = dweight != nullptr || dbias != nullptr;
  std::optional<ember::cuda::DeviceScratch> scratch;  // the chunks' partials, [chunks, 2, n] doubles
  if (params)
    scratch.emplace(ember::cuda::current_device(), static_cast<size_t>(plan.chunks * 2 * sh.n) * sizeof(double));
  double* partials = params ? reinterpret_cast<double*>(scratch->get()) : nullptr;
  ember::cuda::launch(ln_backward_kernel, ember::cuda::grid_for(plan.chunks, 1), ember::cuda::row_block_threads(sh.n),
                      0, ember::cuda::stream(), cptr(dy), cptr(x), cptr(mean), cptr(rstd), cptr(weight), sh.rows,
                      sh.n, plan.chunks, plan.len, mptr(dx), partials);
  EMBER_CUDA_CHECK_LAUNCH("ln_backward_kernel");
  if (!params) return;
  ember::cuda::launch(ln_backward_params_kernel, ember::cuda::grid_for(sh.n, kParamThreads), kParamThreads, 0,
                      ember::cuda::stream(), static_cast<const double*>(partials), plan.chunks, sh.n, mptr(dweight),
                      mptr(dbias));
  EMBER_CUDA_CHECK_LAUNCH("ln_backward_params_kernel");
}

}  // namespace

const Registrar registrar([] {
  auto& t = table_for<LayerNormKernels>(DeviceType::CUDA);
  t.forward = forward;
  t.backward = backward;
});

}  // namespace ember::kernels::cuda_backend
