/// @file kernels/cuda/backend_info.h @brief What the linked CUDA backend is (emulated or real) and a handle on its hand-written tiled SGEMM, for tests and benchmarks.
#pragma once
#include "core/tensor.h"

namespace ember::kernels {

/// Filled for DeviceType::CUDA by the CUDA backend (kernels/cuda/runtime.cu, matmul.cu) in both builds;
/// all defaults when no CUDA backend is linked.
struct CudaBackendInfo {
  /// True in ember_cuda_emu (kernels run on the CPU through kernels/cuda/emulator), false on a GPU.
  bool emulated = false;
  /// The hand-written tiled SGEMM (kernels/cuda/matmul.cu). Both builds' gemm is cuBLAS (the emulated
  /// cuBLAS in the emulated build); this stays reachable for comparisons. Contract of MatmulKernels::gemm
  /// (kernels/matmul.h), f32 only, without the entry point's validation: pass operands kernels::gemm
  /// would accept, with 2-D operands of a 3-D output already expanded to 3-D.
  void (*tiled_gemm)(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& c, double alpha,
                     double beta) = nullptr;
};

}  // namespace ember::kernels
