/// @file kernels/cuda/lib/cublas_gemm.cpp @brief The CUDA gemm: cublasSgemmStridedBatched on the device's compute stream with one handle per device, row-major through C^T = op(B)^T op(A)^T.
//
// cuBLAS is column-major. A row-major matrix X with row stride ld is, read column-major, X^T with
// leading dimension ld. So the row-major C = op(A) op(B) is computed as the column-major
// C^T = op(B)^T op(A)^T: swap the operands, keep each one's trans flag, and pass (n, m, k).
// Batch stride 0 broadcasts an operand over the batch.
#include "kernels/cuda/lib/cublas_gemm.h"

#include <cuda_runtime.h>

#include <map>
#include <mutex>

#include "kernels/cuda/device_context.h"
#include "kernels/dispatch.h"
#include "kernels/matmul.h"

namespace ember::cuda {

cublasHandle_t cublas_handle() {
  static std::mutex mu;
  static auto& handles = *new std::map<int, cublasHandle_t>();  // never destroyed: used until the process ends
  std::lock_guard<std::mutex> lock(mu);
  cublasHandle_t& h = handles[current_device()];
  if (h == nullptr) {
    EMBER_CUBLAS_CHECK(cublasCreate(&h));
    EMBER_CUBLAS_CHECK(cublasSetStream(h, stream()));
  }
  return h;
}

namespace {

void gemm(const Tensor& a, bool ta, const Tensor& b, bool tb, Tensor& c, double alpha, double beta) {
  EMBER_CHECK(a.dtype() == DType::f32 && b.dtype() == DType::f32 && c.dtype() == DType::f32,
              "gemm: the CUDA backend computes in f32 only, got ", describe(a), ", ", describe(b), ", ", describe(c));
  const int64_t batch = c.dim() == 3 ? c.size(0) : 1;
  const int64_t m = c.size(-2), n = c.size(-1), k = ta ? a.size(-2) : a.size(-1);
  EMBER_CHECK(m <= INT32_MAX && n <= INT32_MAX && k <= INT32_MAX && batch <= INT32_MAX, "gemm: sizes m=", m, " n=", n,
              " k=", k, " batch=", batch, " exceed cuBLAS's int range");
  const float fa = static_cast<float>(alpha), fb = static_cast<float>(beta);
  const long long sa = a.dim() == 3 ? a.stride(0) : 0, sb = b.dim() == 3 ? b.stride(0) : 0, sc = m * n;
  EMBER_CUBLAS_CHECK(cublasSgemmStridedBatched(
      cublas_handle(), tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, static_cast<int>(n),
      static_cast<int>(m), static_cast<int>(k), &fa, static_cast<const float*>(b.data_ptr()),
      static_cast<int>(b.stride(-2)), sb, static_cast<const float*>(a.data_ptr()), static_cast<int>(a.stride(-2)), sa,
      &fb, static_cast<float*>(c.data_ptr()), static_cast<int>(c.stride(-2)), sc, static_cast<int>(batch)));
}

}  // namespace

const kernels::Registrar registrar([] { kernels::table_for<kernels::MatmulKernels>(DeviceType::CUDA).gemm = gemm; });

}  // namespace ember::cuda
