/// @file kernels/cuda/loss.cu @brief CUDA fused cross-entropy: one block per row computes log-sum-exp and the loss (ignore_index, label smoothing); the backward writes softmax - smoothed onehot scaled per row; one block counts the non-ignored targets.
//
// Forward: block per row (rows b, b + gridDim.x, ...), pass 1 the row max, pass 2 the sum of
// expf(x - max) in double (as kernels/cpu/loss.cpp), then thread 0 writes lse and the loss and flags
// a target outside [0, C) in the device's check record (kernels/cuda/device_checks.h): no copy back and
// no host sync per forward; the host raises the error naming the target at its next synchronization.
// A row whose target is ignore_index has loss 0 and is not checked. With label smoothing eps > 0 the
// block also sums the row (in double) for the uniform term lse - mean_j x_j.
// Backward: elementwise over N*C, no reductions (lse was saved by the forward).
// Count: one block sums the non-ignored targets in int64 (exact whatever the order).
#include <cmath>
#include <cstdint>
#include <string>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/device_checks.h"
#include "kernels/cuda/warp_reduce.cuh"
#include "kernels/device_checks.h"
#include "kernels/dispatch.h"
#include "kernels/loss.h"

namespace ember::kernels::cuda_backend {
namespace {

constexpr unsigned kThreads = 256;

struct RowScratch {
  float maxes[ember::cuda::kMaxWarps + 1];
  double sums[ember::cuda::kMaxWarps + 1];
};

struct CountScratch {
  long long counts[ember::cuda::kMaxWarps + 1];
};

// ---------------------------------------------------------------------------------------- kernels

/// lse[r] = max + log(sum_j expf(x[r, j] - max)); losses[r] = (1 - eps) (lse[r] - x[r, t]) + eps (lse[r] -
/// mean_j x[r, j]) for t = target[r] (0 where t == ignore; NaN and a failure of `check` for a target
/// outside [0, C)). Grid min(N, 8 per SM) x row_block_threads(C), static shared RowScratch (~400 B).
/// Bytes: 4*N*C read (the row's second and, with eps > 0, third pass hit L1/L2) + 8*N targets + 8*N written.
__global__ void cross_entropy_forward_kernel(const float* x, const int64_t* targets, float* losses, float* lse,
                                             ember::cuda::DeferredCheck check, int64_t rows, int64_t c,
                                             int64_t ignore, double eps) {
  EMBER_SHARED(RowScratch, scratch);
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* xr = x + r * c;
    float mx = -INFINITY;
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x) mx = ember::cuda::MaxOp{}(mx, xr[j]);
    mx = ember::cuda::block_reduce(mx, ember::cuda::MaxOp{}, -INFINITY, scratch.maxes);
    double s = 0.0;
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x)
      s += exp(static_cast<double>(xr[j]) - static_cast<double>(mx));
    s = ember::cuda::block_reduce(s, ember::cuda::SumOp{}, 0.0, scratch.sums);
    const int64_t t = targets[r];
    double sx = 0.0;  // the row sum, for the smoothing term only (eps and t are uniform in the block)
    if (eps != 0.0 && t != ignore) {
      for (int64_t j = threadIdx.x; j < c; j += blockDim.x) sx += static_cast<double>(xr[j]);
      sx = ember::cuda::block_reduce(sx, ember::cuda::SumOp{}, 0.0, scratch.sums);
    }
    if (threadIdx.x == 0) {
      const double l = static_cast<double>(mx) + log(s);
      lse[r] = static_cast<float>(l);
      if (t == ignore) {
        losses[r] = 0.0f;
      } else if (t < 0 || t >= c) {
        atomicAdd(&check.record->failures, 1ull);
        atomicMin(&check.record->first_tag, check.tag);
        losses[r] = NAN;
      } else if (eps == 0.0) {
        losses[r] = static_cast<float>(l - static_cast<double>(xr[t]));
      } else {
        const double smooth = l - sx / static_cast<double>(c);
        losses[r] = static_cast<float>((1.0 - eps) * (l - static_cast<double>(xr[t])) + eps * smooth);
      }
    }
  }
}

/// gx[r, j] = (expf(x[r, j] - lse[r]) - (j == t ? on : off)) * grad_losses[r] for t = target[r] (on =
/// 1 - eps + eps/C, off = eps/C); 0 where t == ignore. Grid-stride over N*C, min(ceil(N*C/256), 8 per SM)
/// x 256, no shared memory. Bytes: 8*N*C (x read, gx written) + 20*N (targets, lse, grad_losses; cached
/// across a row).
__global__ void cross_entropy_backward_kernel(const float* x, const int64_t* targets, const float* lse,
                                              const float* grad_losses, float* gx, int64_t total, int64_t c,
                                              int64_t ignore, float on, float off) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / c, j = i % c;
    const int64_t t = targets[r];
    if (t == ignore) {
      gx[i] = 0.0f;
      continue;
    }
    const float p = expf(x[i] - lse[r]);
    gx[i] = __fmul_rn(p - (j == t ? on : off), grad_losses[r]);  // no FMA: rounds as the CPU
  }
}

/// count[0] = the number of targets != ignore. One block of 256 threads (thread-strided int64 counts,
/// then block_reduce), static shared CountScratch (264 B). Bytes: 8*N read + 8 written.
__global__ void count_not_ignored_kernel(const int64_t* targets, int64_t n, int64_t ignore, int64_t* count) {
  EMBER_SHARED(CountScratch, scratch);
  long long kept = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) kept += targets[i] != ignore ? 1 : 0;
  kept = ember::cuda::block_reduce(kept, ember::cuda::SumOp{}, 0ll, scratch.counts);
  if (threadIdx.x == 0) count[0] = static_cast<int64_t>(kept);
}

// -------------------------------------------------------------------------------------- launchers

using ember::cuda::check_f32;

int64_t cross_entropy_forward(const Tensor& logits, const Tensor& targets, const CrossEntropyParams& p, Tensor& losses,
                              Tensor& lse) {
  check_f32("cross_entropy", logits);
  const int64_t rows = logits.size(0), c = logits.size(1);
  // On failure (read after the next host sync): the CPU's message, plus where the forward was queued.
  const ember::cuda::DeferredCheck check =
      ember::cuda::defer_check([targets, c, ignore = p.ignore_index, device = logits.device(),
                                context = check_context()] {
        raise_bad_targets(targets, c, ignore,
                          " (found on " + device.str() + (context.empty() ? "" : " in " + context) +
                              "; a device-side check, raised at the next host synchronization)");
      });
  ember::cuda::launch(cross_entropy_forward_kernel, ember::cuda::row_grid(rows), ember::cuda::row_block_threads(c), 0,
                      ember::cuda::stream(), static_cast<const float*>(logits.data_ptr()),
                      static_cast<const int64_t*>(targets.data_ptr()), static_cast<float*>(losses.data_ptr()),
                      static_cast<float*>(lse.data_ptr()), check, rows, c, p.ignore_index, p.label_smoothing);
  EMBER_CUDA_CHECK_LAUNCH("cross_entropy_forward_kernel");
  return 0;
}

void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse, const Tensor& grad_losses,
                            const CrossEntropyParams& p, Tensor& grad_logits) {
  check_f32("cross_entropy_backward", logits);
  const int64_t total = logits.numel(), c = logits.size(1);
  ember::cuda::launch(cross_entropy_backward_kernel, ember::cuda::grid_for(total, kThreads), kThreads, 0,
                      ember::cuda::stream(), static_cast<const float*>(logits.data_ptr()),
                      static_cast<const int64_t*>(targets.data_ptr()), static_cast<const float*>(lse.data_ptr()),
                      static_cast<const float*>(grad_losses.data_ptr()), static_cast<float*>(grad_logits.data_ptr()),
                      total, c, p.ignore_index, static_cast<float>(p.on_target(c)),
                      static_cast<float>(p.off_target(c)));
  EMBER_CUDA_CHECK_LAUNCH("cross_entropy_backward_kernel");
}

void count_not_ignored(const Tensor& targets, int64_t ignore_index, Tensor& count) {
  ember::cuda::launch(count_not_ignored_kernel, 1u, kThreads, 0, ember::cuda::stream(),
                      static_cast<const int64_t*>(targets.data_ptr()), targets.numel(), ignore_index,
                      static_cast<int64_t*>(count.data_ptr()));
  EMBER_CUDA_CHECK_LAUNCH("count_not_ignored_kernel");
}

}  // namespace

const Registrar registrar([] {
  auto& t = table_for<LossKernels>(DeviceType::CUDA);
  t.cross_entropy_forward = cross_entropy_forward;
  t.cross_entropy_backward = cross_entropy_backward;
  t.count_not_ignored = count_not_ignored;
});

}  // namespace ember::kernels::cuda_backend
