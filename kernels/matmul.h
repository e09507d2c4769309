/// @file kernels/matmul.h @brief GEMM entry: C = alpha * op(A) @ op(B) + beta * C, 2-D or batched 3-D (CPU OpenBLAS, CUDA cuBLAS).
#pragma once
#include <string>

#include "core/tensor.h"

namespace ember::kernels {

struct MatmulKernels {
  /// A: [m', k'] or [batch, m', k'] with unit last stride (row-major; leading dim = stride(-2));
  /// batch stride may be 0 (broadcast). op(A) = A^T when trans_a. Same for B. C: contiguous
  /// [m, n] or [batch, m, n]. beta = 1 accumulates into C (gradient GEMMs write into .grad).
  void (*gemm)(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& c, double alpha,
               double beta) = nullptr;
};

/// Validates shapes/strides/devices/dtypes (error names the shapes) and dispatches.
void gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& c, double alpha = 1.0,
          double beta = 0.0);

/// True when t (2-D or 3-D) has unit last stride and a leading dimension >= its last size, i.e. it
/// can be passed to gemm as is; (t^T can then be passed with the trans flag).
bool gemm_compatible(const Tensor& t);

/// The CPU GEMM's library and kernels, e.g. "OpenBLAS SkylakeX", with a note when Ember chose them
/// because OpenBLAS fell back to its generic SSE3 kernels (kernels/cpu/blas_core.cpp); "" when unknown.
std::string cpu_blas_core();

}  // namespace ember::kernels
