/// @file kernels/cuda/loss.cu @brief CUDA fused cross-entropy: one block per row computes log-sum-exp and the loss; the backward writes softmax - onehot scaled per row.
//
// Forward: block per row (rows b, b + gridDim.x, ...), pass 1 the row max, pass 2 the sum of
// expf(x - max) in double (as kernels/cpu/loss.cpp), then thread 0 writes lse and the loss and flags
// a target outside [0, C) in the device's check record (kernels/cuda/device_checks.h): no copy back and
// no host sync per forward; the host raises the error naming the target at its next synchronization.
// Backward: elementwise over N*C, no reductions (lse was saved by the forward).
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

// ---------------------------------------------------------------------------------------- kernels

/// lse[r] = max + log(sum_j expf(x[r, j] - max)); losses[r] = lse[r] - x[r, target[r]] (NaN and
/// a failure of `check` for a target outside [0, C)). Grid min(N, 8 per SM) x row_block_threads(C), static
/// shared RowScratch (~400 B). Bytes: 4*N*C read (the row's second pass hits L1/L2) + 8*N targets + 8*N written.
__global__ void cross_entropy_forward_kernel(const float* x, const int64_t* targets, float* losses, float* lse,
                                             ember::cuda::DeferredCheck check, int64_t rows, int64_t c) {
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
    if (threadIdx.x == 0) {
      const double l = static_cast<double>(mx) + log(s);
      lse[r] = static_cast<float>(l);
      const int64_t t = targets[r];
      if (t < 0 || t >= c) {
        atomicAdd(&check.record->failures, 1ull);
        atomicMin(&check.record->first_tag, check.tag);
        losses[r] = NAN;
      } else {
        losses[r] = static_cast<float>(l - static_cast<double>(xr[t]));
      }
    }
  }
}

/// gx[r, j] = (expf(x[r, j] - lse[r]) - [j == target[r]]) * grad_losses[r]. Grid-stride over N*C,
/// min(ceil(N*C/256), 8 per SM) x 256, no shared memory. Bytes: 8*N*C (x read, gx written) + 20*N
/// (targets, lse, grad_losses; cached across a row).
__global__ void cross_entropy_backward_kernel(const float* x, const int64_t* targets, const float* lse,
                                              const float* grad_losses, float* gx, int64_t total, int64_t c) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / c, j = i % c;
    const float p = expf(x[i] - lse[r]);
    gx[i] = __fmul_rn(j == targets[r] ? p - 1.0f : p, grad_losses[r]);  // no FMA: rounds as the CPU
  }
}

// -------------------------------------------------------------------------------------- launchers

using ember::cuda::check_f32;

int64_t cross_entropy_forward(const Tensor& logits, const Tensor& targets, Tensor& losses, Tensor& lse) {
  check_f32("cross_entropy", logits);
  const int64_t rows = logits.size(0), c = logits.size(1);
  // On failure (read after the next host sync): the CPU's message, plus where the forward was queued.
  const ember::cuda::DeferredCheck check =
      ember::cuda::defer_check([targets, c, device = logits.device(), context = check_context()] {
        raise_bad_targets(targets, c,
                          " (found on " + device.str() + (context.empty() ? "" : " in " + context) +
                              "; a device-side check, raised at the next host synchronization)");
      });
  ember::cuda::launch(cross_entropy_forward_kernel, ember::cuda::row_grid(rows), ember::cuda::row_block_threads(c), 0,
                      ember::cuda::stream(), static_cast<const float*>(logits.data_ptr()),
                      static_cast<const int64_t*>(targets.data_ptr()), static_cast<float*>(losses.data_ptr()),
                      static_cast<float*>(lse.data_ptr()), check, rows, c);
  EMBER_CUDA_CHECK_LAUNCH("cross_entropy_forward_kernel");
  return 0;
}

void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse, const Tensor& grad_losses,
                            Tensor& grad_logits) {
  check_f32("cross_entropy_backward", logits);
  const int64_t total = logits.numel(), c = logits.size(1);
  ember::cuda::launch(cross_entropy_backward_kernel, ember::cuda::grid_for(total, kThreads), kThreads, 0,
                      ember::cuda::stream(), static_cast<const float*>(logits.data_ptr()),
                      static_cast<const int64_t*>(targets.data_ptr()), static_cast<const float*>(lse.data_ptr()),
                      static_cast<const float*>(grad_losses.data_ptr()), static_cast<float*>(grad_logits.data_ptr()),
                      total, c);
  EMBER_CUDA_CHECK_LAUNCH("cross_entropy_backward_kernel");
}

}  // namespace

const Registrar registrar([] {
  auto& t = table_for<LossKernels>(DeviceType::CUDA);
  t.cross_entropy_forward = cross_entropy_forward;
  t.cross_entropy_backward = cross_entropy_backward;
});

}  // namespace ember::kernels::cuda_backend
