/// @file kernels/cuda/partials.cuh @brief The second stage of the multi-tensor reductions (scale_many, the fused optimizers): per-block partial sums and non-finite flags added in a fixed order into the device-resident step status.
//
// Each first-stage block writes one partial sum of squares and one flag (0 or 1, as a double); this
// one-block kernel adds them in a fixed order (thread i takes partials i, i + 256, ..., then
// block_reduce's fixed tree), so the total is bitwise the same on every run and schedule. It writes
// the step status (kernels/accumulate.h) on the device: nothing is copied to the host.
#pragma once
#include <cstdint>

#include "kernels/accumulate.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/warp_reduce.cuh"

namespace ember::cuda {
namespace {

inline constexpr unsigned kPartialsThreads = 256;

struct PartialsScratch {
  double sums[kMaxWarps + 1];
};

/// status[kStatusSumSquares] = (add ? it : 0) + sum of sums[0, count); status[kStatusNonFinite] = 1 when
/// any flag is non-zero (or it already was, with add). Launch: 1 block x kPartialsThreads, static shared
/// ~270 B. Bytes: 16 per partial read, 16 written.
__global__ void finalize_partials_kernel(const double* sums, const double* flags, int64_t count, double* status,
                                         bool add) {
  EMBER_SHARED(PartialsScratch, scratch);
  double s = 0.0, any = 0.0;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) {
    s += sums[i];
    any += flags[i] != 0.0 ? 1.0 : 0.0;
  }
  s = block_reduce(s, SumOp{}, 0.0, scratch.sums);
  any = block_reduce(any, SumOp{}, 0.0, scratch.sums);
  if (threadIdx.x == 0) {
    const bool was_bad = add && status[kStatusNonFinite] != 0.0;
    status[kStatusSumSquares] = (add ? status[kStatusSumSquares] : 0.0) + s;
    status[kStatusNonFinite] = any > 0.0 || was_bad ? 1.0 : 0.0;
  }
}

/// Launches finalize_partials_kernel on the current device's compute stream.
inline void finalize_partials(const double* sums, const double* flags, int64_t count, double* status, bool add) {
  launch(finalize_partials_kernel, 1u, kPartialsThreads, 0, stream(), sums, flags, count, status, add);
  EMBER_CUDA_CHECK_LAUNCH("finalize_partials_kernel");
}

}  // namespace
}  // namespace ember::cuda
