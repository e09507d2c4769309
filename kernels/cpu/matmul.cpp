/// @file kernels/cpu/matmul.cpp @brief CPU GEMM through OpenBLAS (cblas_sgemm / cblas_dgemm), batched by looping over the batch.
#include <cblas.h>

#include "kernels/dispatch.h"
#include "kernels/matmul.h"

namespace ember::kernels::cpu {
namespace {

void gemm(const Tensor& a, bool ta, const Tensor& b, bool tb, Tensor& c, double alpha, double beta) {
  const bool batched = c.dim() == 3;
  const int64_t batch = batched ? c.size(0) : 1;
  const int64_t m = c.size(-2), n = c.size(-1);
  const int64_t k = ta ? a.size(-2) : a.size(-1);
  const int64_t lda = a.stride(-2), ldb = b.stride(-2), ldc = c.stride(-2);
  const int64_t sa = a.dim() == 3 ? a.stride(0) : 0, sb = b.dim() == 3 ? b.stride(0) : 0, sc = m * n;
  const auto tA = ta ? CblasTrans : CblasNoTrans, tB = tb ? CblasTrans : CblasNoTrans;
  for (int64_t i = 0; i < batch; ++i) {
    if (c.dtype() == DType::f32) {
      cblas_sgemm(CblasRowMajor, tA, tB, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k),
                  static_cast<float>(alpha), static_cast<const float*>(a.data_ptr()) + i * sa, static_cast<int>(lda),
                  static_cast<const float*>(b.data_ptr()) + i * sb, static_cast<int>(ldb), static_cast<float>(beta),
                  static_cast<float*>(c.data_ptr()) + i * sc, static_cast<int>(ldc));
    } else {
      cblas_dgemm(CblasRowMajor, tA, tB, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha,
                  static_cast<const double*>(a.data_ptr()) + i * sa, static_cast<int>(lda),
                  static_cast<const double*>(b.data_ptr()) + i * sb, static_cast<int>(ldb), beta,
                  static_cast<double*>(c.data_ptr()) + i * sc, static_cast<int>(ldc));
    }
  }
}

}  // namespace

const Registrar registrar([] { table_for<MatmulKernels>(DeviceType::CPU).gemm = gemm; });

}  // namespace ember::kernels::cpu
