/// @file kernels/cuda/batchnorm.cu @brief CUDA batch norm: per-channel Welford statistics (warp shuffles + shared memory, Chan merges), normalize, backward reduction (dgamma, dbeta) and dx, running-stats update.
//
// x is viewed as [N, C, S] (contiguous). The two reductions (statistics, backward sums) run one block
// per channel (blocks loop over channels c = blockIdx.x, + gridDim.x, ...): the block's threads stride
// over the channel's N*S values j -> x[(j / S) * C * S + c * S + j % S], so for S >= 32 a warp reads
// consecutive floats (for BatchNorm1d on [N, C] inputs, S = 1, reads are strided by C).
//  - statistics: each thread keeps a Welford (count, mean, M2) in f32; the 32 lanes of a warp merge theirs
//    with Chan's formula through __shfl_down_sync, lane 0 of each warp stores its triple in shared
//    memory, and warp 0 merges those. mean and the biased variance M2 / count are written.
//  - backward sums: sum dy and sum dy * xhat accumulate in double (like kernels/cpu/batchnorm.cpp) and are
//    reduced by block_reduce (kernels/cuda/warp_reduce.cuh).
// The elementwise passes (normalize, dx) are grid-stride loops with 256 threads; invstd = 1 / sqrt(var +
// eps) and the final multiply-adds are rounded exactly as the CPU backend rounds them (explicit fmaf).
#include <cmath>
#include <cstdint>

#include "kernels/batchnorm.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/warp_reduce.cuh"
#include "kernels/dispatch.h"

namespace ember::kernels::cuda_backend {
namespace {

using ember::cuda::kFullMask;
using ember::cuda::kMaxWarps;
using ember::cuda::kWarpSize;

constexpr unsigned kThreads = 256;        // elementwise passes
constexpr unsigned kReduceThreads = 256;  // upper bound of the per-channel blocks

/// Running (count, mean, M2) of a set of values.
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
  const int n = a.count + b.count;
  if (b.count == 0) return a;
  if (a.count == 0) return b;
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

/// Offset of value j (0 <= j < N*S) of channel c.
__device__ inline int64_t channel_offset(int64_t j, int64_t c, int64_t channels, int64_t s) {
  return ((j / s) * channels + c) * s + j % s;
}

__device__ inline float invstd_of(float var, float eps) { return 1.0f / sqrtf(var + eps); }

// ---------------------------------------------------------------------------------------- kernels

/// mean[c], var[c] (biased) of the N*S values of each channel. Grid min(C, 65535) blocks, each looping
/// over channels; block 32..256 threads (a multiple of 32); static shared memory 32 Welford triples.
/// Bytes: 4 * N*C*S read + 8 * C written.
__global__ void bn_stats_kernel(const float* x, int64_t n, int64_t channels, int64_t s, float* mean, float* var) {
  EMBER_SHARED(Welford[kMaxWarps], partial);
  const unsigned warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize, warps = blockDim.x / kWarpSize;
  const int64_t m = n * s;
  for (int64_t c = blockIdx.x; c < channels; c += gridDim.x) {
    Welford w{0, 0.0f, 0.0f};
    for (int64_t j = threadIdx.x; j < m; j += blockDim.x) w = welford_add(w, x[channel_offset(j, c, channels, s)]);
    w = warp_merge(w);
    __syncthreads();  // the previous channel's readers of `partial` are done
    if (lane == 0) partial[warp] = w;
    __syncthreads();
    if (warp == 0) {
      w = lane < warps ? partial[lane] : Welford{0, 0.0f, 0.0f};
      w = warp_merge(w);
      if (lane == 0) {
        mean[c] = w.mean;
        var[c] = w.m2 / static_cast<float>(w.count);
      }
    }
  }
}

/// y = fmaf((x - mean[c]) * invstd[c], weight[c], bias[c]) (weight/bias null: 1/0). Grid-stride over
/// N*C*S, 256 threads. Bytes: 8 * N*C*S (x read, y written) + per-channel values (cached).
__global__ void bn_normalize_kernel(const float* x, const float* mean, const float* var, const float* weight,
                                    const float* bias, float eps, int64_t total, int64_t channels, int64_t s,
                                    float* y) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c = (i / s) % channels;
    const float w = weight ? weight[c] : 1.0f, b = bias ? bias[c] : 0.0f;
    y[i] = fmaf((x[i] - mean[c]) * invstd_of(var[c], eps), w, b);
  }
}

/// sum_dy[c] = sum dy, sum_dy_xhat[c] = sum dy * xhat over the channel's N*S values, in double.
/// Grid and block as bn_stats_kernel; static shared memory 33 doubles. Bytes: 8 * N*C*S read + 8 * C written.
__global__ void bn_backward_reduce_kernel(const float* dy, const float* x, const float* mean, const float* var,
                                          float eps, int64_t n, int64_t channels, int64_t s, float* sum_dy,
                                          float* sum_dy_xhat) {
  EMBER_SHARED(double[kMaxWarps + 1], scratch);
  const int64_t m = n * s;
  for (int64_t c = blockIdx.x; c < channels; c += gridDim.x) {
    const float mu = mean[c], inv = invstd_of(var[c], eps);
    double a = 0.0, b = 0.0;
    for (int64_t j = threadIdx.x; j < m; j += blockDim.x) {
      const int64_t o = channel_offset(j, c, channels, s);
      a += static_cast<double>(dy[o]);
      b += static_cast<double>(dy[o]) * static_cast<double>((x[o] - mu) * inv);
    }
    a = ember::cuda::block_reduce(a, ember::cuda::SumOp{}, 0.0, scratch);
    b = ember::cuda::block_reduce(b, ember::cuda::SumOp{}, 0.0, scratch);
    if (threadIdx.x == 0) {
      sum_dy[c] = static_cast<float>(a);
      sum_dy_xhat[c] = static_cast<float>(b);
    }
  }
}

/// dx = fmaf(-xhat, sum_dy_xhat[c] / M, dy - sum_dy[c] / M) * (invstd[c] * weight[c]) (batch statistics),
/// or dy * (invstd[c] * weight[c]) (running statistics). Grid-stride over N*C*S, 256 threads.
/// Bytes: 12 * N*C*S (dy and x read, dx written; 8 * N*C*S with running statistics).
__global__ void bn_backward_input_kernel(const float* dy, const float* x, const float* mean, const float* var,
                                         const float* weight, const float* sum_dy, const float* sum_dy_xhat,
                                         float eps, bool batch_stats, int64_t total, int64_t channels, int64_t s,
                                         float per_channel, float* dx) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c = (i / s) % channels;
    const float inv = invstd_of(var[c], eps);
    const float scale = inv * (weight ? weight[c] : 1.0f);
    if (!batch_stats) {
      dx[i] = dy[i] * scale;
      continue;
    }
    const float mean_dy = sum_dy[c] / per_channel, mean_dy_xhat = sum_dy_xhat[c] / per_channel;
    const float xhat = (x[i] - mean[c]) * inv;
    dx[i] = fmaf(-xhat, mean_dy_xhat, dy[i] - mean_dy) * scale;
  }
}

/// running = fmaf(momentum, stat, (1 - momentum) * running) per channel (the variance scaled by unbias);
/// thread 0 also adds 1 to num_batches_tracked (when not null). Grid-stride over C, 256 threads.
/// Bytes: 24 * C (+ 16).
__global__ void bn_update_running_kernel(float* running_mean, float* running_var, int64_t* num_batches_tracked,
                                         const float* mean, const float* var, float momentum, float keep,
                                         float unbias, bool cumulative, int64_t channels) {
  if (cumulative) {  // 1 / (count + 1) in double, as the host computes it; the count is bumped by the next kernel
    const double m = 1.0 / (static_cast<double>(*num_batches_tracked) + 1.0);
    momentum = static_cast<float>(m);
    keep = static_cast<float>(1.0 - m);
  }
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (int64_t c = first; c < channels; c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    running_mean[c] = fmaf(momentum, mean[c], keep * running_mean[c]);
    running_var[c] = fmaf(momentum, var[c] * unbias, keep * running_var[c]);
  }
  if (!cumulative && first == 0 && num_batches_tracked) *num_batches_tracked += 1;
}

/// *num_batches_tracked += 1 after a cumulative update (which every block read the count for). Launch:
/// 1 x 1. Bytes: 16.
__global__ void bn_count_batch_kernel(int64_t* num_batches_tracked) { *num_batches_tracked += 1; }

// -------------------------------------------------------------------------------------- launchers

void check_f32(const char* op, const Tensor& t) {
  EMBER_CHECK(t.dtype() == DType::f32, op, ": the CUDA backend computes in f32 only, got ", describe(t));
}

const float* cptr(const Tensor& t) { return t.defined() ? static_cast<const float*>(t.data_ptr()) : nullptr; }
float* mptr(Tensor& t) { return static_cast<float*>(t.data_ptr()); }

unsigned elementwise_blocks(int64_t n) { return ember::cuda::grid_for(n, kThreads); }

/// Per-channel block: the channel's value count rounded up to a warp, between 32 and 256 threads.
unsigned reduce_threads(int64_t per_channel) {
  const int64_t t = (per_channel + kWarpSize - 1) / kWarpSize * kWarpSize;
  return static_cast<unsigned>(t < kWarpSize ? kWarpSize : (t > kReduceThreads ? kReduceThreads : t));
}

/// Blocks of the per-channel kernels, which loop over channels: min(C, 65535), or the test's grid cap.
unsigned channel_blocks(int64_t channels) {
  const int64_t cap = ember::cuda::grid_cap(65535u);
  return static_cast<unsigned>(channels < cap ? channels : cap);
}

void stats(const Tensor& x, const BatchNormShape& sh, Tensor& mean, Tensor& var) {
  check_f32("batch_norm_stats", x);
  if (sh.c == 0) return;
  ember::cuda::launch(bn_stats_kernel, channel_blocks(sh.c), reduce_threads(sh.per_channel()), 0,
                      ember::cuda::stream(), cptr(x), sh.n, sh.c, sh.s, mptr(mean), mptr(var));
  EMBER_CUDA_CHECK_LAUNCH("bn_stats_kernel");
}

void normalize(const Tensor& x, const Tensor& mean, const Tensor& var, const Tensor& weight, const Tensor& bias,
               double eps, const BatchNormShape& sh, Tensor& y) {
  check_f32("batch_norm", x);
  const int64_t total = x.numel();
  ember::cuda::launch(bn_normalize_kernel, elementwise_blocks(total), kThreads, 0, ember::cuda::stream(), cptr(x),
                      cptr(mean), cptr(var), cptr(weight), cptr(bias), static_cast<float>(eps), total, sh.c, sh.s,
                      mptr(y));
  EMBER_CUDA_CHECK_LAUNCH("bn_normalize_kernel");
}

void backward_reduce(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& var, double eps,
                     const BatchNormShape& sh, Tensor& sum_dy, Tensor& sum_dy_xhat) {
  check_f32("batch_norm_backward", x);
  if (sh.c == 0) return;
  ember::cuda::launch(bn_backward_reduce_kernel, channel_blocks(sh.c), reduce_threads(sh.per_channel()), 0,
                      ember::cuda::stream(), cptr(dy), cptr(x), cptr(mean), cptr(var), static_cast<float>(eps), sh.n,
                      sh.c, sh.s, mptr(sum_dy), mptr(sum_dy_xhat));
  EMBER_CUDA_CHECK_LAUNCH("bn_backward_reduce_kernel");
}

void backward_input(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& var, const Tensor& weight,
                    const Tensor& sum_dy, const Tensor& sum_dy_xhat, double eps, bool batch_stats,
                    const BatchNormShape& sh, Tensor& dx) {
  check_f32("batch_norm_backward", x);
  const int64_t total = x.numel();
  ember::cuda::launch(bn_backward_input_kernel, elementwise_blocks(total), kThreads, 0, ember::cuda::stream(),
                      cptr(dy), cptr(x), cptr(mean), cptr(var), cptr(weight), cptr(sum_dy), cptr(sum_dy_xhat),
                      static_cast<float>(eps), batch_stats, total, sh.c, sh.s,
                      static_cast<float>(sh.per_channel()), mptr(dx));
  EMBER_CUDA_CHECK_LAUNCH("bn_backward_input_kernel");
}

void update_running(Tensor& running_mean, Tensor& running_var, Tensor* num_batches_tracked, const Tensor& mean,
                    const Tensor& var, double momentum, double unbias) {
  check_f32("batch_norm running statistics", mean);
  const int64_t c = mean.numel();
  const bool cumulative = momentum == kernels::kCumulativeMomentum;
  ember::cuda::launch(bn_update_running_kernel, elementwise_blocks(c), kThreads, 0, ember::cuda::stream(),
                      mptr(running_mean), mptr(running_var),
                      num_batches_tracked ? static_cast<int64_t*>(num_batches_tracked->data_ptr()) : nullptr,
                      cptr(mean), cptr(var), static_cast<float>(momentum), static_cast<float>(1.0 - momentum),
                      static_cast<float>(unbias), cumulative, c);
  EMBER_CUDA_CHECK_LAUNCH("bn_update_running_kernel");
  if (cumulative) {
    ember::cuda::launch(bn_count_batch_kernel, 1u, 1u, 0, ember::cuda::stream(),
                        static_cast<int64_t*>(num_batches_tracked->data_ptr()));
    EMBER_CUDA_CHECK_LAUNCH("bn_count_batch_kernel");
  }
}

}  // namespace

const Registrar registrar([] {
  auto& t = table_for<BatchNormKernels>(DeviceType::CUDA);
  t.stats = stats;
  t.normalize = normalize;
  t.backward_reduce = backward_reduce;
  t.backward_input = backward_input;
  t.update_running = update_running;
});

}  // namespace ember::kernels::cuda_backend
