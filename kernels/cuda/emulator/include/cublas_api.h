/// @file kernels/cuda/emulator/include/cublas_api.h @brief The emulated cuBLAS (kernels/cuda/emulator/cublas.cpp): the subset of CUDA 13's cublas_api.h that Ember uses, with the real names, types, enum values and status codes.
//
// Written by hand (the real header pulls in the CUDA runtime headers); tests/emulator/api_check/cublas.cu
// checks every declaration here against the real header. Include <cublas_v2.h>, as with the real library.
//
// What the fake does (tests/emulator/test_fake_cublas.cpp):
//  - handles remember the device current at cublasCreate; a call while another device is current fails
//    with CUBLAS_STATUS_EXECUTION_FAILED, cublasSetStream with a stream of another device with
//    CUBLAS_STATUS_INVALID_VALUE (both undocumented; see cublas.cpp);
//  - arguments are validated as the cuBLAS documentation states (NOT_INITIALIZED / INVALID_VALUE);
//  - GEMMs run as queued device work on the handle's stream (ember::emu::enqueue): a plain column-major
//    reference loop accumulating in double; operands that are not device memory of the stream's device
//    fault the device (cudaErrorIllegalAddress) instead of running;
//  - host pointer mode only: cublasSetPointerMode(CUBLAS_POINTER_MODE_DEVICE) returns
//    CUBLAS_STATUS_NOT_SUPPORTED; alpha and beta are read at the call.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

#include "kernels/cuda/emulator/fake_api.h"

EMBER_FAKE_API_BEGIN

typedef enum {
  CUBLAS_STATUS_SUCCESS = 0,
  CUBLAS_STATUS_NOT_INITIALIZED = 1,
  CUBLAS_STATUS_ALLOC_FAILED = 3,
  CUBLAS_STATUS_INVALID_VALUE = 7,
  CUBLAS_STATUS_ARCH_MISMATCH = 8,
  CUBLAS_STATUS_MAPPING_ERROR = 11,
  CUBLAS_STATUS_EXECUTION_FAILED = 13,
  CUBLAS_STATUS_INTERNAL_ERROR = 14,
  CUBLAS_STATUS_NOT_SUPPORTED = 15,
  CUBLAS_STATUS_LICENSE_ERROR = 16
} cublasStatus_t;

typedef enum {
  CUBLAS_OP_N = 0,
  CUBLAS_OP_T = 1,
  CUBLAS_OP_C = 2,
  CUBLAS_OP_HERMITAN = 2,
  CUBLAS_OP_CONJG = 3  ///< a placeholder in cuBLAS too: rejected with CUBLAS_STATUS_INVALID_VALUE
} cublasOperation_t;

typedef enum { CUBLAS_POINTER_MODE_HOST = 0, CUBLAS_POINTER_MODE_DEVICE = 1 } cublasPointerMode_t;

typedef enum {
  CUBLAS_DEFAULT_MATH = 0,
  CUBLAS_TENSOR_OP_MATH = 1,
  CUBLAS_PEDANTIC_MATH = 2,
  CUBLAS_TF32_TENSOR_OP_MATH = 3,
  CUBLAS_FP32_EMULATED_BF16X9_MATH = 4,
  CUBLAS_FP64_EMULATED_FIXEDPOINT_MATH = 8,
  CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION = 16,
} cublasMath_t;

/// The library context (defined in kernels/cuda/emulator/cublas.cpp).
struct cublasContext;
typedef struct cublasContext* cublasHandle_t;

cublasStatus_t cublasCreate_v2(cublasHandle_t* handle);
cublasStatus_t cublasDestroy_v2(cublasHandle_t handle);
cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t handle, void* workspace, size_t workspaceSizeInBytes);
cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t streamId);
cublasStatus_t cublasGetStream_v2(cublasHandle_t handle, cudaStream_t* streamId);
cublasStatus_t cublasGetPointerMode_v2(cublasHandle_t handle, cublasPointerMode_t* mode);
cublasStatus_t cublasSetPointerMode_v2(cublasHandle_t handle, cublasPointerMode_t mode);
cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t* mode);
cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode);
const char* cublasGetStatusName(cublasStatus_t status);
const char* cublasGetStatusString(cublasStatus_t status);

cublasStatus_t cublasSgemm_v2(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                              int k, const float* alpha, const float* A, int lda, const float* B, int ldb,
                              const float* beta, float* C, int ldc);
cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                         int m, int n, int k, const float* alpha, const float* A, int lda,
                                         long long int strideA, const float* B, int ldb, long long int strideB,
                                         const float* beta, float* C, int ldc, long long int strideC, int batchCount);

EMBER_FAKE_API_END
