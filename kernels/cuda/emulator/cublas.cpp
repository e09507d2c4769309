/// @file kernels/cuda/emulator/cublas.cpp @brief The emulated cuBLAS (include/cublas_api.h): handles, stream and mode settings, SGEMM as a plain column-major reference loop queued on the handle's stream.
//
// Statuses follow the cuBLAS documentation of each function. Where it says nothing, the choice is
// commented at the place it is made.
#include <cublas_v2.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/cuda/emulator/device_work.h"
#include "kernels/cuda/emulator/live_handles.h"

/// The library context: the device current at cublasCreate and the settings of the handle.
struct cublasContext {
  int device = 0;
  cudaStream_t stream = nullptr;  ///< nullptr: the legacy default stream
  cublasMath_t math = CUBLAS_DEFAULT_MATH;
  void* workspace = nullptr;  ///< cublasSetWorkspace (recorded; the reference GEMM needs none)
  size_t workspace_bytes = 0;
};

namespace {

ember::emu::LiveHandles<cublasContext>& handles() {
  static auto& h = *new ember::emu::LiveHandles<cublasContext>();  // never destroyed: handles may be released during static destruction
  return h;
}

/// NOT_INITIALIZED for a null, destroyed or never created handle (cuBLAS: "the library was not
/// initialized"). A live handle used while another device is current: cuBLAS documents that the device
/// of a context must stay current from cublasCreate to cublasDestroy, but not what happens otherwise; on
/// a GPU the launch on the handle's resources fails, so the closest status is EXECUTION_FAILED ("the
/// function failed to launch on the GPU").
cublasStatus_t check_handle(cublasHandle_t h) {
  if (!handles().contains(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (h->device != ember::emu::current_device()) return CUBLAS_STATUS_EXECUTION_FAILED;
  return CUBLAS_STATUS_SUCCESS;
}

// ------------------------------------------------------------------------------------------- GEMM

/// One stored column-major operand: `rows` x `cols` with leading dimension ld, batch b at p + b*stride.
struct Matrix {
  const float* p;
  int rows, cols, ld;
  long long stride;
};

/// The device memory the operand occupies over `batch` matrices (a negative batch stride starts below p).
ember::emu::DeviceSpan span_of(const Matrix& x, int batch, const char* what) {
  if (x.rows == 0 || x.cols == 0 || batch == 0) return {x.p, 0, what};
  const long long last = static_cast<long long>(batch - 1) * x.stride;
  const long long lo = std::min(0LL, last);
  const long long hi = std::max(0LL, last) + static_cast<long long>(x.cols - 1) * x.ld + x.rows;
  return {x.p + lo, static_cast<std::size_t>(hi - lo) * sizeof(float), what};
}

/// Element strides of op(X): op(X)(r, c) = x[r * row + c * col] (CUBLAS_OP_C is CUBLAS_OP_T for reals).
struct OpStrides {
  long long row, col;
};
OpStrides op_strides(cublasOperation_t t, int ld) { return t == CUBLAS_OP_N ? OpStrides{1, ld} : OpStrides{ld, 1}; }

/// A validated GEMM with alpha and beta already read.
struct Gemm {
  cublasOperation_t ta, tb;
  int m, n, k;
  float alpha, beta;
  Matrix a, b, c;
  float* out;  ///< c.p, writable
  int batch;
};

/// The reference: C[b] = alpha * op(A[b]) op(B[b]) + beta * C[b], summed in double; beta == 0 never reads
/// C, alpha == 0 never reads A and B (as the BLAS reference).
void run_gemm(const Gemm& g) {
  const OpStrides sa = op_strides(g.ta, g.a.ld), sb = op_strides(g.tb, g.b.ld);
  for (int b = 0; b < g.batch; ++b) {
    const float* a = g.a.p + b * g.a.stride;
    const float* bm = g.b.p + b * g.b.stride;
    float* c = g.out + b * g.c.stride;
    for (int j = 0; j < g.n; ++j)
      for (int i = 0; i < g.m; ++i) {
        double dot = 0;
        if (g.alpha != 0)
          for (int p = 0; p < g.k; ++p) dot += double(a[i * sa.row + p * sa.col]) * bm[p * sb.row + j * sb.col];
        float& out = c[i + static_cast<long long>(j) * g.c.ld];
        out = static_cast<float>(double(g.alpha) * dot + (g.beta == 0 ? 0.0 : double(g.beta) * out));
      }
  }
}

bool valid_op(cublasOperation_t t) { return t == CUBLAS_OP_N || t == CUBLAS_OP_T || t == CUBLAS_OP_C; }

/// Validation as documented for cublas<t>gemm / gemmStridedBatched: CUBLAS_STATUS_INVALID_VALUE when
/// m, n, k or batchCount < 0, a transpose is not N/T/C, lda < max(1, rows of op(A) stored) (m for N, k
/// otherwise), ldb < max(1, k for N, n otherwise), ldc < max(1, m), or alpha/beta is null.
cublasStatus_t validate(const Gemm& g, const float* alpha, const float* beta) {
  if (!valid_op(g.ta) || !valid_op(g.tb)) return CUBLAS_STATUS_INVALID_VALUE;
  if (g.m < 0 || g.n < 0 || g.k < 0 || g.batch < 0) return CUBLAS_STATUS_INVALID_VALUE;
  if (g.a.ld < std::max(1, g.a.rows) || g.b.ld < std::max(1, g.b.rows) || g.c.ld < std::max(1, g.m))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (alpha == nullptr || beta == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  return CUBLAS_STATUS_SUCCESS;
}

/// Validates, reads alpha/beta (host pointer mode) and queues the GEMM on the handle's stream with the
/// spans of the operands it reads and writes.
cublasStatus_t gemm(const char* name, cublasHandle_t handle, Gemm g, const float* alpha, const float* beta) {
  if (cublasStatus_t st = check_handle(handle); st != CUBLAS_STATUS_SUCCESS) return st;
  if (cublasStatus_t st = validate(g, alpha, beta); st != CUBLAS_STATUS_SUCCESS) return st;
  if (g.m == 0 || g.n == 0 || g.batch == 0) return CUBLAS_STATUS_SUCCESS;
  g.alpha = *alpha;
  g.beta = *beta;
  const bool reads_ab = g.alpha != 0 && g.k != 0;
  if (!reads_ab && g.beta == 1) return CUBLAS_STATUS_SUCCESS;  // C unchanged (the BLAS quick return)
  std::vector<ember::emu::DeviceSpan> spans{span_of(g.c, g.batch, "C")};
  if (reads_ab) spans.push_back(span_of(g.a, g.batch, "A")), spans.push_back(span_of(g.b, g.batch, "B"));
  const cudaError_t e = ember::emu::enqueue(handle->stream, name, std::move(spans), [g] {
    run_gemm(g);
    return ember::emu::WorkStatus::done;
  });
  return e == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

/// The GEMM of the arguments common to cublasSgemm and cublasSgemmStridedBatched.
Gemm make_gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const float* A, int lda,
               long long sa, const float* B, int ldb, long long sb, float* C, int ldc, long long sc, int batch) {
  const Matrix a{A, ta == CUBLAS_OP_N ? m : k, ta == CUBLAS_OP_N ? k : m, lda, sa};
  const Matrix b{B, tb == CUBLAS_OP_N ? k : n, tb == CUBLAS_OP_N ? n : k, ldb, sb};
  return Gemm{ta, tb, m, n, k, 0.0f, 0.0f, a, b, Matrix{C, m, n, ldc, sc}, C, batch};
}

}  // namespace

// ------------------------------------------------------------------------------------ the C API

/// CUBLAS_STATUS_INVALID_VALUE for a null result pointer (documented: "handle == NULL").
cublasStatus_t cublasCreate_v2(cublasHandle_t* handle) {
  if (handle == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  *handle = handles().add(new cublasContext{.device = ember::emu::current_device()});
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
  return handles().remove(handle) ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}

/// The workspace must be aligned to 256 bytes (documented: INVALID_VALUE otherwise); it is recorded only.
cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t handle, void* workspace, size_t workspaceSizeInBytes) {
  if (cublasStatus_t st = check_handle(handle); st != CUBLAS_STATUS_SUCCESS) return st;
  if (reinterpret_cast<std::uintptr_t>(workspace) % 256 != 0) return CUBLAS_STATUS_INVALID_VALUE;
  handle->workspace = workspace;
  handle->workspace_bytes = workspaceSizeInBytes;
  return CUBLAS_STATUS_SUCCESS;
}

/// A stream that is not a valid stream handle, or belongs to another device than the handle's: cuBLAS
/// documents no status (it would fail at the next launch); the emulation rejects it at once with
/// CUBLAS_STATUS_INVALID_VALUE.
cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t streamId) {
  if (cublasStatus_t st = check_handle(handle); st != CUBLAS_STATUS_SUCCESS) return st;
  if (ember::emu::stream_device(streamId) != handle->device) return CUBLAS_STATUS_INVALID_VALUE;
  handle->stream = streamId;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetStream_v2(cublasHandle_t handle, cudaStream_t* streamId) {
  if (cublasStatus_t st = check_handle(handle); st != CUBLAS_STATUS_SUCCESS) return st;
  if (streamId == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  *streamId = handle->stream;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetPointerMode_v2(cublasHandle_t handle, cublasPointerMode_t* mode) {
  if (cublasStatus_t st = check_handle(handle); st != CUBLAS_STATUS_SUCCESS) return st;
  if (mode == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  *mode = CUBLAS_POINTER_MODE_HOST;
  return CUBLAS_STATUS_SUCCESS;
}

/// Host pointer mode only: CUBLAS_POINTER_MODE_DEVICE is CUBLAS_STATUS_NOT_SUPPORTED in the emulation.
cublasStatus_t cublasSetPointerMode_v2(cublasHandle_t handle, cublasPointerMode_t mode) {
  if (cublasStatus_t st = check_handle(handle); st != CUBLAS_STATUS_SUCCESS) return st;
  if (mode == CUBLAS_POINTER_MODE_HOST) return CUBLAS_STATUS_SUCCESS;
  return mode == CUBLAS_POINTER_MODE_DEVICE ? CUBLAS_STATUS_NOT_SUPPORTED : CUBLAS_STATUS_INVALID_VALUE;
}

cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t* mode) {
  if (cublasStatus_t st = check_handle(handle); st != CUBLAS_STATUS_SUCCESS) return st;
  if (mode == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  *mode = handle->math;
  return CUBLAS_STATUS_SUCCESS;
}

/// One of the math modes, optionally with CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION; recorded
/// only (the reference loop always computes in double).
cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  if (cublasStatus_t st = check_handle(handle); st != CUBLAS_STATUS_SUCCESS) return st;
  const int base = mode & ~CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION;
  if ((base < CUBLAS_DEFAULT_MATH || base > CUBLAS_FP32_EMULATED_BF16X9_MATH) &&
      base != CUBLAS_FP64_EMULATED_FIXEDPOINT_MATH)
    return CUBLAS_STATUS_INVALID_VALUE;
  handle->math = mode;
  return CUBLAS_STATUS_SUCCESS;
}

const char* cublasGetStatusName(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}

/// The descriptions of the cuBLAS documentation's status table.
const char* cublasGetStatusString(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "the operation completed successfully";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
    case CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    case CUBLAS_STATUS_LICENSE_ERROR: return "an error was detected when checking the current licensing";
  }
  return "unknown error";
}

cublasStatus_t cublasSgemm_v2(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                              int k, const float* alpha, const float* A, int lda, const float* B, int ldb,
                              const float* beta, float* C, int ldc) {
  return gemm("cublasSgemm", handle, make_gemm(transa, transb, m, n, k, A, lda, 0, B, ldb, 0, C, ldc, 0, 1), alpha,
              beta);
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                         int m, int n, int k, const float* alpha, const float* A, int lda,
                                         long long int strideA, const float* B, int ldb, long long int strideB,
                                         const float* beta, float* C, int ldc, long long int strideC,
                                         int batchCount) {
  const Gemm g = make_gemm(transa, transb, m, n, k, A, lda, strideA, B, ldb, strideB, C, ldc, strideC, batchCount);
  return gemm("cublasSgemmStridedBatched", handle, g, alpha, beta);
}
