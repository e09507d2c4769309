/// @file kernels/cuda/batchnorm.cu @brief CUDA batch norm: two-stage deterministic per-channel Welford statistics and backward sums (a grid of (channel, slice) blocks, then a fixed-order merge per channel), normalize, dx, running-stats update.
//
// x is viewed as [N, C, S] (contiguous); value j (0 <= j < N*S) of channel c is x[((j / S) * C + c) * S
// + j % S], so for S >= 32 a warp reads consecutive floats (for BatchNorm1d on [N, C] inputs, S = 1,
// reads are strided by C).
// The two reductions (statistics, backward sums) cut each channel's N*S values into `slices` slices of
// `len` values (plan_slices: a function of the shape only, never of the device or the grid, so the
// results are the same bits on every GPU, grid cap, run and schedule). Stage 1 gives one block to each
// (channel, slice) item (blocks loop over the C * slices items; the grid is sized to the device, 8
// blocks per SM); stage 2 gives one warp to each channel and merges its partials in slice order:
//  - statistics: each thread keeps a Welford (count, mean, M2) in f32; the 32 lanes of a warp merge theirs
//    with Chan's formula through __shfl_down_sync, lane 0 of each warp stores its triple in shared
//    memory, and warp 0 merges those into the item's partial. The merge kernel combines a channel's
//    partials with the same formula (lane l takes slices l, l + 32, ..., then the shuffle tree) and
//    writes mean and the biased variance M2 / count.
//  - backward sums: sum dy and sum dy * xhat accumulate in double (like kernels/cpu/batchnorm.cpp), are
//    reduced by block_reduce (kernels/cuda/warp_reduce.cuh) per item, and added in double per channel.
// A channel of one slice (small inputs) skips stage 2: its block writes the result itself.
// The elementwise passes (normalize, dx) are grid-stride loops with 256 threads, 32-bit indices with
// fast division (kernels/cuda/index_math.h) when the tensor allows; invstd = 1 / sqrt(var + eps) and
// the final multiply-adds are rounded exactly as the CPU backend rounds them (explicit fmaf).
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/batchnorm.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/device_scratch.h"
#include "kernels/cuda/index_math.h"
#include "kernels/cuda/warp_reduce.cuh"
#include "kernels/dispatch.h"

namespace ember::kernels::cuda_backend {
namespace {

using ember::cuda::kFullMask;
using ember::cuda::kMaxWarps;
using ember::cuda::kWarpSize;

constexpr unsigned kThreads = 256;        // elementwise passes
constexpr unsigned kReduceThreads = 256;  // upper bound of the per-channel blocks

/// How the reductions cut a channel's N*S values: `slices` slices of `len` values (the last may be
/// shorter, none is empty). At least kMinSlice values per slice when there are several (8 per thread
/// of a 256-thread block), and about kTargetItems (channel, slice) items in all: enough blocks for 8
/// per SM on a 132-SM GPU to take ~4 items each. Depends only on the shape.
constexpr int64_t kMinSlice = 2048;
constexpr int64_t kTargetItems = 4096;

struct SlicePlan {
  int64_t slices = 1;
  int64_t len = 0;
};

/// The plan of [N, C, S] with per_channel = N*S. A slice's values are counted in int (Welford), so
/// len must stay below 2^31: it is at most max(2048, N*C*S / 4096) + 1, below 2^31 for any tensor a
/// device holds; checked anyway, naming `op`.
SlicePlan plan_slices(int64_t channels, int64_t per_channel, const char* op) {
  const int64_t wanted = (kTargetItems + channels - 1) / channels;
  const int64_t most = per_channel / kMinSlice;  // so that len >= kMinSlice when p > 1
  const int64_t p = std::max<int64_t>(1, std::min(wanted, most));
  SlicePlan plan;
  plan.len = (per_channel + p - 1) / p;
  plan.slices = plan.len == 0 ? 1 : (per_channel + plan.len - 1) / plan.len;  // N*S = 0: one empty slice
  EMBER_CHECK(plan.len <= INT32_MAX, op, ": ", per_channel, " values per channel in slices of ", plan.len,
              " exceed the kernel's 32-bit per-slice count (", channels, " channels)");
  return plan;
}

/// Running (count, mean, M2) of a set of values. Count is int for a thread's or a slice's values (a
/// slice holds fewer than 2^31, see plan_slices) and int64 where the slices of a channel are merged.
template <class Count>
struct WelfordT {
  Count count;
  float mean;
  float m2;
};
using Welford = WelfordT<int>;
using Welford64 = WelfordT<int64_t>;

/// Adds one value (Welford's update).
__device__ inline Welford welford_add(Welford a, float v) {
  a.count += 1;
  const float d = v - a.mean;
  a.mean += d / static_cast<float>(a.count);
  a.m2 += d * (v - a.mean);
  return a;
}

/// The statistics of the union of two disjoint sets (Chan et al.'s parallel formula).
template <class Count>
__device__ inline WelfordT<Count> welford_merge(WelfordT<Count> a, WelfordT<Count> b) {
  const Count n = a.count + b.count;
  if (b.count == 0) return a;
  if (a.count == 0) return b;
  const float delta = b.mean - a.mean;
  const float wb = static_cast<float>(b.count) / static_cast<float>(n);
  return WelfordT<Count>{n, a.mean + delta * wb, a.m2 + b.m2 + delta * delta * static_cast<float>(a.count) * wb};
}

/// Lane 0 receives the merge of the warp's 32 triples.
template <class Count>
__device__ inline WelfordT<Count> warp_merge(WelfordT<Count> w) {
  for (unsigned off = kWarpSize / 2; off > 0; off /= 2) {
    const WelfordT<Count> other{__shfl_down_sync(kFullMask, w.count, off), __shfl_down_sync(kFullMask, w.mean, off),
                                __shfl_down_sync(kFullMask, w.m2, off)};
    w = welford_merge(w, other);
  }
  return w;
}

/// mean[c] and the biased variance M2 / count of a channel's merged triple.
template <class Count>
__device__ inline void write_stats(WelfordT<Count> w, int64_t c, float* mean, float* var) {
  mean[c] = w.mean;
  var[c] = w.m2 / static_cast<float>(w.count);
}

/// The offsets of values j, j + step, j + 2 step, ... (0 <= j < N*S) of channel c: offset(j) =
/// ((j / S) * C + c) * S + j % S, with (j / S, j % S) carried from one value to the next instead of
/// divided per element (one 64-bit division per thread per (channel, slice), none per value).
struct ChannelCursor {
  int64_t q, r;            // j / S, j % S
  int64_t step_q, step_r;  // step / S, step % S
  __device__ ChannelCursor(int64_t j, int64_t step, int64_t s)
      : q(j / s), r(j % s), step_q(step / s), step_r(step % s) {}
  __device__ int64_t offset(int64_t c, int64_t channels, int64_t s) const { return (q * channels + c) * s + r; }
  __device__ void advance(int64_t s) {
    q += step_q;
    r += step_r;
    if (r >= s) {
      r -= s;
      q += 1;
    }
  }
};

/// The values [lo, hi) of channel c's N*S that (channel, slice) work item `item` reduces.
struct SliceRange {
  int64_t c, lo, hi;
};

__device__ inline SliceRange slice_of(int64_t item, int64_t slices, int64_t len, int64_t m) {
  const int64_t c = item / slices, p = item - c * slices;
  const int64_t lo = p * len;
  return SliceRange{c, lo, lo + len < m ? lo + len : m};
}

__device__ inline float invstd_of(float var, float eps) { return 1.0f / sqrtf(var + eps); }

// ---------------------------------------------------------------------------------------- kernels

/// Stage 1 of the statistics: the Welford triple of each (channel, slice) work item (item = c *
/// slices + p covers values [p * len, min((p + 1) * len, N*S)) of channel c). Blocks loop over the
/// C * slices items (item = blockIdx.x, + gridDim.x, ...); the threads of a block stride over the
/// slice, each keeping an f32 Welford triple, merged by Chan's formula across the warp (shuffles)
/// and across warps (shared memory). Writes partials[item], or, when the channel is one slice
/// (partials null), mean[c] and var[c] directly. Grid min(C * slices, 8*SM) (or the test cap), block
/// 32..256 threads (a multiple of 32), static shared memory 32 triples (384 B).
/// Bytes: 4 * N*C*S read + 12 * C * slices written (8 * C with one slice).
__global__ void bn_stats_kernel(const float* x, int64_t channels, int64_t s, int64_t m, int64_t slices, int64_t len,
                                Welford* partials, float* mean, float* var) {
  EMBER_SHARED(Welford[kMaxWarps], partial);
  const unsigned warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize, warps = blockDim.x / kWarpSize;
  for (int64_t item = blockIdx.x; item < channels * slices; item += gridDim.x) {
    const SliceRange r = slice_of(item, slices, len, m);
    Welford w{0, 0.0f, 0.0f};
    ChannelCursor at(r.lo + threadIdx.x, blockDim.x, s);
    for (int64_t j = r.lo + threadIdx.x; j < r.hi; j += blockDim.x) {
      w = welford_add(w, x[at.offset(r.c, channels, s)]);
      at.advance(s);
    }
    w = warp_merge(w);
    __syncthreads();  // the previous channel's readers of `partial` are done (or the previous slice's)
    if (lane == 0) partial[warp] = w;
    __syncthreads();
    if (warp == 0) {
      w = lane < warps ? partial[lane] : Welford{0, 0.0f, 0.0f};
      w = warp_merge(w);
      if (lane == 0) {
        if (partials != nullptr) {
          partials[item] = w;
        } else {
          write_stats(w, r.c, mean, var);
        }
      }
    }
  }
}

/// Stage 2 of the statistics: one warp per channel merges the channel's `slices` partials in a fixed
/// order (lane l takes slices l, l + 32, ... in turn, then the shuffle tree; counts in int64), and
/// writes mean[c] and the biased var[c]. Grid min(ceil(C / 8), 8*SM) (or the test cap) x 256 threads
/// (8 warps, looping over channels), no shared memory, no barriers.
/// Bytes: 12 * C * slices read + 8 * C written.
__global__ void bn_stats_merge_kernel(const Welford* partials, int64_t channels, int64_t slices, float* mean,
                                      float* var) {
  const unsigned lane = threadIdx.x % kWarpSize, warps = blockDim.x / kWarpSize;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * warps + threadIdx.x / kWarpSize;
  for (int64_t c = first; c < channels; c += static_cast<int64_t>(gridDim.x) * warps) {
    Welford64 w{0, 0.0f, 0.0f};
    for (int64_t p = lane; p < slices; p += kWarpSize) {
      const Welford part = partials[c * slices + p];
      w = welford_merge(w, Welford64{part.count, part.mean, part.m2});
    }
    w = warp_merge(w);
    if (lane == 0) write_stats(w, c, mean, var);
  }
}

/// y = fmaf((x - mean[c]) * invstd[c], weight[c], bias[c]) (weight/bias null: 1/0). Grid-stride over
/// N*C*S, 256 threads; Index uint32_t (channel by two FastDivmods) when N*C*S + the grid's threads fit
/// int32, else int64_t (plain division). Bytes: 8 * N*C*S (x read, y written) + per-channel values (cached).
template <class Index>
__global__ void bn_normalize_kernel(const float* x, const float* mean, const float* var, const float* weight,
                                    const float* bias, float eps, Index total, ember::cuda::ChannelOf<Index> channel_of,
                                    float* y) {
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<Index>(gridDim.x) * blockDim.x) {
    const Index c = channel_of(i);
    const float w = weight ? weight[c] : 1.0f, b = bias ? bias[c] : 0.0f;
    y[i] = fmaf((x[i] - mean[c]) * invstd_of(var[c], eps), w, b);
  }
}

/// Stage 1 of the backward sums: for each (channel, slice) item as in bn_stats_kernel, sum dy and
/// sum dy * xhat over the slice in double (thread-strided partial sums, then block_reduce's fixed
/// trees). Writes partials[2 item] and partials[2 item + 1], or, when the channel is one slice
/// (partials null), sum_dy[c] and sum_dy_xhat[c] as floats. Grid and block as bn_stats_kernel;
/// static shared memory 33 doubles (264 B). Bytes: 8 * N*C*S read + 16 * C * slices written (8 * C
/// with one slice) + 8 * C * slices (mean, var per item, cached).
__global__ void bn_backward_reduce_kernel(const float* dy, const float* x, const float* mean, const float* var,
                                          float eps, int64_t channels, int64_t s, int64_t m, int64_t slices,
                                          int64_t len, double* partials, float* sum_dy, float* sum_dy_xhat) {
  EMBER_SHARED(double[kMaxWarps + 1], scratch);
  for (int64_t item = blockIdx.x; item < channels * slices; item += gridDim.x) {
    const SliceRange r = slice_of(item, slices, len, m);
    const float mu = mean[r.c], inv = invstd_of(var[r.c], eps);
    double a = 0.0, b = 0.0;
    ChannelCursor at(r.lo + threadIdx.x, blockDim.x, s);
    for (int64_t j = r.lo + threadIdx.x; j < r.hi; j += blockDim.x) {
      const int64_t o = at.offset(r.c, channels, s);
      a += static_cast<double>(dy[o]);
      b += static_cast<double>(dy[o]) * static_cast<double>((x[o] - mu) * inv);
      at.advance(s);
    }
    a = ember::cuda::block_reduce(a, ember::cuda::SumOp{}, 0.0, scratch);
    b = ember::cuda::block_reduce(b, ember::cuda::SumOp{}, 0.0, scratch);
    if (threadIdx.x == 0) {
      if (partials != nullptr) {
        partials[2 * item] = a;
        partials[2 * item + 1] = b;
      } else {
        sum_dy[r.c] = static_cast<float>(a);
        sum_dy_xhat[r.c] = static_cast<float>(b);
      }
    }
  }
}

/// Stage 2 of the backward sums: one warp per channel adds the channel's `slices` pairs of partials in
/// a fixed order (lane l takes slices l, l + 32, ..., then the shuffle tree), in double, and writes
/// sum_dy[c], sum_dy_xhat[c]. Grid and block as bn_stats_merge_kernel.
/// Bytes: 16 * C * slices read + 8 * C written.
__global__ void bn_backward_merge_kernel(const double* partials, int64_t channels, int64_t slices, float* sum_dy,
                                         float* sum_dy_xhat) {
  const unsigned lane = threadIdx.x % kWarpSize, warps = blockDim.x / kWarpSize;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * warps + threadIdx.x / kWarpSize;
  for (int64_t c = first; c < channels; c += static_cast<int64_t>(gridDim.x) * warps) {
    double a = 0.0, b = 0.0;
    for (int64_t p = lane; p < slices; p += kWarpSize) {
      a += partials[2 * (c * slices + p)];
      b += partials[2 * (c * slices + p) + 1];
    }
    a = ember::cuda::warp_reduce(a, ember::cuda::SumOp{});
    b = ember::cuda::warp_reduce(b, ember::cuda::SumOp{});
    if (lane == 0) {
      sum_dy[c] = static_cast<float>(a);
      sum_dy_xhat[c] = static_cast<float>(b);
    }
  }
}

/// dx = fmaf(-xhat, sum_dy_xhat[c] / M, dy - sum_dy[c] / M) * (invstd[c] * weight[c]) (batch statistics),
/// or dy * (invstd[c] * weight[c]) (running statistics). Grid-stride over N*C*S, 256 threads; Index as
/// bn_normalize_kernel. Bytes: 12 * N*C*S (dy and x read, dx written; 8 * N*C*S with running statistics).
template <class Index>
__global__ void bn_backward_input_kernel(const float* dy, const float* x, const float* mean, const float* var,
                                         const float* weight, const float* sum_dy, const float* sum_dy_xhat,
                                         float eps, bool batch_stats, Index total,
                                         ember::cuda::ChannelOf<Index> channel_of, float per_channel, float* dx) {
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<Index>(gridDim.x) * blockDim.x) {
    const Index c = channel_of(i);
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

using ember::cuda::check_f32;

const float* cptr(const Tensor& t) { return t.defined() ? static_cast<const float*>(t.data_ptr()) : nullptr; }
float* mptr(Tensor& t) { return static_cast<float*>(t.data_ptr()); }

unsigned elementwise_blocks(int64_t n) { return ember::cuda::grid_for(n, kThreads); }

/// Per-channel block: the slice's value count rounded up to a warp, between 32 and 256 threads.
unsigned reduce_threads(int64_t per_slice) {
  const int64_t t = (per_slice + kWarpSize - 1) / kWarpSize * kWarpSize;
  return static_cast<unsigned>(t < kWarpSize ? kWarpSize : (t > kReduceThreads ? kReduceThreads : t));
}

/// Grid of the stage-1 kernels: one block per (channel, slice) item, at most 8 per SM (or the test's
/// cap); blocks loop over the items.
unsigned item_blocks(int64_t items) { return ember::cuda::grid_for(items, 1); }

/// Grid of the merge kernels: a warp per channel, 8 channels per 256-thread block, looping.
unsigned merge_blocks(int64_t channels) { return ember::cuda::grid_for(channels, kThreads / kWarpSize); }

/// Whether the elementwise passes over `total` values take the 32-bit index path.
bool fits32(int64_t total) {
  return ember::cuda::fits_int32_loop(total, static_cast<int64_t>(elementwise_blocks(total)) * kThreads);
}

void stats(const Tensor& x, const BatchNormShape& sh, Tensor& mean, Tensor& var) {
  check_f32("batch_norm_stats", x);
  if (sh.c == 0) return;
  const SlicePlan plan = plan_slices(sh.c, sh.per_channel(), "batch_norm_stats");
  const int64_t items = sh.c * plan.slices;
  const unsigned threads = reduce_threads(plan.len);
  if (plan.slices == 1) {
    ember::cuda::launch(bn_stats_kernel, item_blocks(items), threads, 0, ember::cuda::stream(), cptr(x), sh.c, sh.s,
                        sh.per_channel(), plan.slices, plan.len, static_cast<Welford*>(nullptr), mptr(mean), mptr(var));
    EMBER_CUDA_CHECK_LAUNCH("bn_stats_kernel");
    return;
  }
  ember::cuda::DeviceScratch scratch(ember::cuda::current_device(), static_cast<size_t>(items) * sizeof(Welford));
  Welford* partials = reinterpret_cast<Welford*>(scratch.get());
  ember::cuda::launch(bn_stats_kernel, item_blocks(items), threads, 0, ember::cuda::stream(), cptr(x), sh.c, sh.s,
                      sh.per_channel(), plan.slices, plan.len, partials, static_cast<float*>(nullptr),
                      static_cast<float*>(nullptr));
  EMBER_CUDA_CHECK_LAUNCH("bn_stats_kernel");
  ember::cuda::launch(bn_stats_merge_kernel, merge_blocks(sh.c), kThreads, 0, ember::cuda::stream(),
                      static_cast<const Welford*>(partials), sh.c, plan.slices, mptr(mean), mptr(var));
  EMBER_CUDA_CHECK_LAUNCH("bn_stats_merge_kernel");
}

void normalize(const Tensor& x, const Tensor& mean, const Tensor& var, const Tensor& weight, const Tensor& bias,
               double eps, const BatchNormShape& sh, Tensor& y) {
  check_f32("batch_norm", x);
  const int64_t total = x.numel();
  ember::cuda::with_index_type(fits32(total), [&](auto index) {
    using Index = decltype(index);
    ember::cuda::launch(bn_normalize_kernel<Index>, elementwise_blocks(total), kThreads, 0, ember::cuda::stream(),
                        cptr(x), cptr(mean),
                        cptr(var), cptr(weight), cptr(bias), static_cast<float>(eps), static_cast<Index>(total),
                        ember::cuda::ChannelOf<Index>(sh.s, sh.c), mptr(y));
    EMBER_CUDA_CHECK_LAUNCH("bn_normalize_kernel");
  });
}

void backward_reduce(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& var, double eps,
                     const BatchNormShape& sh, Tensor& sum_dy, Tensor& sum_dy_xhat) {
  check_f32("batch_norm_backward", x);
  if (sh.c == 0) return;
  const SlicePlan plan = plan_slices(sh.c, sh.per_channel(), "batch_norm_backward");
  const int64_t items = sh.c * plan.slices;
  const unsigned threads = reduce_threads(plan.len);
  if (plan.slices == 1) {
    ember::cuda::launch(bn_backward_reduce_kernel, item_blocks(items), threads, 0, ember::cuda::stream(), cptr(dy),
                        cptr(x), cptr(mean), cptr(var), static_cast<float>(eps), sh.c, sh.s, sh.per_channel(),
                        plan.slices, plan.len, static_cast<double*>(nullptr), mptr(sum_dy), mptr(sum_dy_xhat));
    EMBER_CUDA_CHECK_LAUNCH("bn_backward_reduce_kernel");
    return;
  }
  ember::cuda::DeviceScratch scratch(ember::cuda::current_device(), static_cast<size_t>(items) * 2 * sizeof(double));
  double* partials = reinterpret_cast<double*>(scratch.get());
  ember::cuda::launch(bn_backward_reduce_kernel, item_blocks(items), threads, 0, ember::cuda::stream(), cptr(dy),
                      cptr(x), cptr(mean), cptr(var), static_cast<float>(eps), sh.c, sh.s, sh.per_channel(),
                      plan.slices, plan.len, partials, static_cast<float*>(nullptr), static_cast<float*>(nullptr));
  EMBER_CUDA_CHECK_LAUNCH("bn_backward_reduce_kernel");
  ember::cuda::launch(bn_backward_merge_kernel, merge_blocks(sh.c), kThreads, 0, ember::cuda::stream(),
                      static_cast<const double*>(partials), sh.c, plan.slices, mptr(sum_dy), mptr(sum_dy_xhat));
  EMBER_CUDA_CHECK_LAUNCH("bn_backward_merge_kernel");
}

void backward_input(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& var, const Tensor& weight,
                    const Tensor& sum_dy, const Tensor& sum_dy_xhat, double eps, bool batch_stats,
                    const BatchNormShape& sh, Tensor& dx) {
  check_f32("batch_norm_backward", x);
  const int64_t total = x.numel();
  ember::cuda::with_index_type(fits32(total), [&](auto index) {
    using Index = decltype(index);
    ember::cuda::launch(bn_backward_input_kernel<Index>, elementwise_blocks(total), kThreads, 0, ember::cuda::stream(),
                        cptr(dy),
                        cptr(x), cptr(mean), cptr(var), cptr(weight), cptr(sum_dy), cptr(sum_dy_xhat),
                        static_cast<float>(eps), batch_stats, static_cast<Index>(total),
                        ember::cuda::ChannelOf<Index>(sh.s, sh.c), static_cast<float>(sh.per_channel()), mptr(dx));
    EMBER_CUDA_CHECK_LAUNCH("bn_backward_input_kernel");
  });
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
