/// @file kernels/cpu/blas.h @brief C = alpha op(A) op(B) + beta C, row-major, through OpenBLAS (cblas_sgemm / cblas_dgemm): the one wrapper of the CPU's GEMMs (matmul.cpp, conv_direct.cpp).
#pragma once
#include <cblas.h>

#include <cstdint>

namespace ember::kernels::cpu {

inline void gemm_row_major(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<int>(m),
              static_cast<int>(n), static_cast<int>(k), alpha, a, static_cast<int>(lda), b, static_cast<int>(ldb), beta,
              c, static_cast<int>(ldc));
}
inline void gemm_row_major(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
                           int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<int>(m),
              static_cast<int>(n), static_cast<int>(k), alpha, a, static_cast<int>(lda), b, static_cast<int>(ldb), beta,
              c, static_cast<int>(ldc));
}

}  // namespace ember::kernels::cpu
