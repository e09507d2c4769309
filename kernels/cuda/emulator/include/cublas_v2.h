/// @file kernels/cuda/emulator/include/cublas_v2.h @brief `#include <cublas_v2.h>` in the emulated build: the emulated cuBLAS (cublas_api.h) with the real header's mapping of the generic names to the _v2 functions.
#pragma once
#include "cublas_api.h"

// As in the real cublas_v2.h (same replacement lists, so including both headers, as the api_check
// does, is not a redefinition).
#ifndef cublasCreate
#define cublasCreate cublasCreate_v2
#endif
#ifndef cublasDestroy
#define cublasDestroy cublasDestroy_v2
#endif
#ifndef cublasSetWorkspace
#define cublasSetWorkspace cublasSetWorkspace_v2
#endif
#ifndef cublasSetStream
#define cublasSetStream cublasSetStream_v2
#endif
#ifndef cublasGetStream
#define cublasGetStream cublasGetStream_v2
#endif
#ifndef cublasGetPointerMode
#define cublasGetPointerMode cublasGetPointerMode_v2
#endif
#ifndef cublasSetPointerMode
#define cublasSetPointerMode cublasSetPointerMode_v2
#endif
#ifndef cublasSgemm
#define cublasSgemm cublasSgemm_v2
#endif
