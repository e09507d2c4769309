/// @file tests/emulator/api_check/cublas.cu @brief The emulated cuBLAS header (kernels/cuda/emulator/include/cublas_v2.h) against CUDA's cublas_v2.h: signatures, enum values, the _v2 name macros.
#include <cublas_v2.h>

#include "tests/emulator/api_check/api_check.h"

// Drop the real generic-name macros, so the checks by generic name below go through the fake's.
#undef cublasCreate
#undef cublasDestroy
#undef cublasSetWorkspace
#undef cublasSetStream
#undef cublasGetStream
#undef cublasGetPointerMode
#undef cublasSetPointerMode
#undef cublasSgemm

#define EMBER_FAKE_API_NAMESPACE
#include "kernels/cuda/emulator/include/cublas_v2.h"

EMBER_API_MAP(cublasContext, cublasContext);
EMBER_API_MAP(cublasStatus_t, cublasStatus_t);
EMBER_API_MAP(cublasOperation_t, cublasOperation_t);
EMBER_API_MAP(cublasPointerMode_t, cublasPointerMode_t);
EMBER_API_MAP(cublasMath_t, cublasMath_t);

// Every enumerator the fake declares.
EMBER_API_SAME_VALUE(CUBLAS_STATUS_SUCCESS);
EMBER_API_SAME_VALUE(CUBLAS_STATUS_NOT_INITIALIZED);
EMBER_API_SAME_VALUE(CUBLAS_STATUS_ALLOC_FAILED);
EMBER_API_SAME_VALUE(CUBLAS_STATUS_INVALID_VALUE);
EMBER_API_SAME_VALUE(CUBLAS_STATUS_ARCH_MISMATCH);
EMBER_API_SAME_VALUE(CUBLAS_STATUS_MAPPING_ERROR);
EMBER_API_SAME_VALUE(CUBLAS_STATUS_EXECUTION_FAILED);
EMBER_API_SAME_VALUE(CUBLAS_STATUS_INTERNAL_ERROR);
EMBER_API_SAME_VALUE(CUBLAS_STATUS_NOT_SUPPORTED);
EMBER_API_SAME_VALUE(CUBLAS_STATUS_LICENSE_ERROR);
EMBER_API_SAME_VALUE(CUBLAS_OP_N);
EMBER_API_SAME_VALUE(CUBLAS_OP_T);
EMBER_API_SAME_VALUE(CUBLAS_OP_C);
EMBER_API_SAME_VALUE(CUBLAS_OP_HERMITAN);
EMBER_API_SAME_VALUE(CUBLAS_OP_CONJG);
EMBER_API_SAME_VALUE(CUBLAS_POINTER_MODE_HOST);
EMBER_API_SAME_VALUE(CUBLAS_POINTER_MODE_DEVICE);
EMBER_API_SAME_VALUE(CUBLAS_DEFAULT_MATH);
EMBER_API_SAME_VALUE(CUBLAS_TENSOR_OP_MATH);
EMBER_API_SAME_VALUE(CUBLAS_PEDANTIC_MATH);
EMBER_API_SAME_VALUE(CUBLAS_TF32_TENSOR_OP_MATH);
EMBER_API_SAME_VALUE(CUBLAS_FP32_EMULATED_BF16X9_MATH);
EMBER_API_SAME_VALUE(CUBLAS_FP64_EMULATED_FIXEDPOINT_MATH);
EMBER_API_SAME_VALUE(CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION);
EMBER_API_SAME_SIZE(cublasStatus_t);
EMBER_API_SAME_SIZE(cublasOperation_t);
EMBER_API_SAME_SIZE(cublasPointerMode_t);
EMBER_API_SAME_SIZE(cublasMath_t);

// Every function the fake declares, by its exported name ...
EMBER_API_SAME_SIGNATURE(cublasCreate_v2);
EMBER_API_SAME_SIGNATURE(cublasDestroy_v2);
EMBER_API_SAME_SIGNATURE(cublasSetWorkspace_v2);
EMBER_API_SAME_SIGNATURE(cublasSetStream_v2);
EMBER_API_SAME_SIGNATURE(cublasGetStream_v2);
EMBER_API_SAME_SIGNATURE(cublasGetPointerMode_v2);
EMBER_API_SAME_SIGNATURE(cublasSetPointerMode_v2);
EMBER_API_SAME_SIGNATURE(cublasGetMathMode);
EMBER_API_SAME_SIGNATURE(cublasSetMathMode);
EMBER_API_SAME_SIGNATURE(cublasGetStatusName);
EMBER_API_SAME_SIGNATURE(cublasGetStatusString);
EMBER_API_SAME_SIGNATURE(cublasSgemm_v2);
EMBER_API_SAME_SIGNATURE(cublasSgemmStridedBatched);

// ... and by the generic name, through the fake's _v2 macros (the real header's names must exist).
EMBER_API_SAME_SIGNATURE(cublasCreate);
EMBER_API_SAME_SIGNATURE(cublasDestroy);
EMBER_API_SAME_SIGNATURE(cublasSetWorkspace);
EMBER_API_SAME_SIGNATURE(cublasSetStream);
EMBER_API_SAME_SIGNATURE(cublasGetStream);
EMBER_API_SAME_SIGNATURE(cublasGetPointerMode);
EMBER_API_SAME_SIGNATURE(cublasSetPointerMode);
EMBER_API_SAME_SIGNATURE(cublasSgemm);
