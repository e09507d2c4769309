/// @file kernels/cpu/matmul.cpp @brief CPU GEMM through OpenBLAS (cblas_sgemm / cblas_dgemm), batched by looping over the batch.
#include "kernels/cpu/blas.h"
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
  visit_floating(c.dtype(), "gemm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* ap = static_cast<const T*>(a.data_ptr());
    const T* bp = static_cast<const T*>(b.data_ptr());
    T* cp = static_cast<T*>(c.data_ptr());
    for (int64_t i = 0; i < batch; ++i)
      gemm_row_major(ta, tb, m, n, k, static_cast<T>(alpha), ap + i * sa, lda, bp + i * sb, ldb, static_cast<T>(beta),
                     cp + i * sc, ldc);
  });
}

}  // namespace

const Registrar registrar([] { table_for<MatmulKernels>(DeviceType::CPU).gemm = gemm; });

}  // namespace ember::kernels::cpu
