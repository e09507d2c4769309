/// @file kernels/cuda/common.cuh @brief What every CUDA backend file includes: the runtime (real or emulated), EMBER_CUDA_CHECK, the stream, launch sizing.
#pragma once
#include <cstdint>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/cuda/emulator/cuda_compat.h"
#include "kernels/cuda/device_context.h"

/// Throws ember::Error with the CUDA error name and string when `expr` does not return cudaSuccess.
#define EMBER_CUDA_CHECK(expr)                                                                         \
  do {                                                                                                 \
    const cudaError_t ember_cuda_err_ = (expr);                                                        \
    EMBER_CHECK(ember_cuda_err_ == cudaSuccess, #expr, " failed: ", cudaGetErrorName(ember_cuda_err_), \
                " (", cudaGetErrorString(ember_cuda_err_), ")");                                       \
  } while (0)

/// Checks the last launch (configuration errors; in the emulator also barrier/shuffle misuse); the error
/// names the kernel (`kernel_name`: a string).
#define EMBER_CUDA_CHECK_LAUNCH(kernel_name)                                                          \
  do {                                                                                                \
    const cudaError_t ember_launch_err_ = cudaGetLastError();                                         \
    EMBER_CHECK(ember_launch_err_ == cudaSuccess, "launch of ", kernel_name, " failed: ",             \
                cudaGetErrorName(ember_launch_err_), " (", cudaGetErrorString(ember_launch_err_), ")"); \
  } while (0)

namespace ember::cuda {

/// The one source of every launcher's cap on the blocks of a grid whose blocks loop over their work
/// (grid-stride, row, channel and batch loops; multi-tensor chunk lists): `limit`, the launcher's own
/// cap, or the lower cap a test set with ScopedGridCap (kernels/cuda/testing.h, grid_cap.cu).
unsigned grid_cap(unsigned limit);

/// The cap of grid-stride and row loops: 8 blocks per SM, so a launch stays a few waves deep on a
/// large GPU (or the test's cap).
unsigned loop_grid_cap();

/// Blocks for a grid-stride loop over n elements with `threads` per block: ceil(n / threads), at least
/// 1, at most loop_grid_cap().
inline unsigned grid_for(int64_t n, unsigned threads) {
  const int64_t b = (n + threads - 1) / threads;
  const int64_t cap = loop_grid_cap();
  return static_cast<unsigned>(b < 1 ? 1 : (b > cap ? cap : b));
}

/// Throws naming the op when t is not f32: the CUDA backend computes in f32 only.
inline void check_f32(const char* op, const Tensor& t) {
  EMBER_CHECK(t.dtype() == DType::f32, op, ": the CUDA backend computes in f32 only, got ", describe(t));
}

}  // namespace ember::cuda
