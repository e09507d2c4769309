/// @file kernels/cuda/lib/cublas_gemm.h @brief cuBLAS GEMM of the real CUDA build: the lazily created handle and the status check.
#pragma once
#include <cublas_v2.h>

#include "core/error.h"

/// Throws ember::Error naming the cuBLAS status when `expr` does not return CUBLAS_STATUS_SUCCESS.
#define EMBER_CUBLAS_CHECK(expr)                                                                          \
  do {                                                                                                    \
    const cublasStatus_t ember_cublas_st_ = (expr);                                                       \
    EMBER_CHECK(ember_cublas_st_ == CUBLAS_STATUS_SUCCESS, #expr, " failed: ",                            \
                cublasGetStatusName(ember_cublas_st_), " (", cublasGetStatusString(ember_cublas_st_), ")"); \
  } while (0)

namespace ember::cuda {

/// The current device's cuBLAS handle, created on first use and bound to that device's compute stream.
cublasHandle_t cublas_handle();

}  // namespace ember::cuda
