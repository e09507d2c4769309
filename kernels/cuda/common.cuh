/// @file kernels/cuda/common.cuh @brief What every CUDA backend file includes: the runtime (real or emulated), EMBER_CUDA_CHECK, the stream, launch sizing.
#pragma once
#include <cstdint>

#include "core/error.h"
#include "kernels/cuda/emulator/cuda_compat.h"

/// Throws ember::Error with the CUDA error name and string when `expr` does not return cudaSuccess.
#define EMBER_CUDA_CHECK(expr)                                                                         \
  do {                                                                                                 \
    const cudaError_t ember_cuda_err_ = (expr);                                                        \
    EMBER_CHECK(ember_cuda_err_ == cudaSuccess, #expr, " failed: ", cudaGetErrorName(ember_cuda_err_), \
                " (", cudaGetErrorString(ember_cuda_err_), ")");                                       \
  } while (0)

/// Checks the last launch (configuration errors; in the emulator also barrier/shuffle misuse).
#define EMBER_CUDA_CHECK_LAUNCH(kernel_name) EMBER_CUDA_CHECK(cudaGetLastError())

namespace ember::cuda {

/// The stream all Ember work is queued on (one per process for now; created on first use).
cudaStream_t stream();

/// Streaming multiprocessors of device 0 (1 when it cannot be queried); grid-stride kernels cap their
/// grids at a few blocks per SM (kernels/cuda/runtime.cu).
int multiprocessor_count();

/// Blocks for a grid-stride loop over n elements with `threads` per block, capped so a launch stays
/// a few waves deep on a large GPU.
inline unsigned grid_for(int64_t n, unsigned threads, unsigned max_blocks = 65535u) {
  const int64_t b = (n + threads - 1) / threads;
  return static_cast<unsigned>(b < 1 ? 1 : (b > max_blocks ? max_blocks : b));
}

}  // namespace ember::cuda
