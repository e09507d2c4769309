/// @file kernels/matmul.cpp @brief Device-generic GEMM entry: shape/stride validation and dispatch.
#include "kernels/matmul.h"

#include "kernels/dispatch.h"
#include "kernels/elementwise.h"

namespace ember::kernels {

bool gemm_compatible(const Tensor& t) {
  if (t.dim() < 2 || t.dim() > 3) return false;
  const int64_t rows = t.size(-2), cols = t.size(-1);
  return (t.stride(-1) == 1 || cols == 1) && t.stride(-2) >= std::max<int64_t>(cols, 1) && rows >= 0;
}

void gemm(const Tensor& a, bool ta, const Tensor& b, bool tb, Tensor& c, double alpha, double beta) {
  check_same_device("gemm", a, b);
  check_same_device("gemm", a, c);
  check_same_dtype("gemm", a, b);
  check_same_dtype("gemm", a, c);
  EMBER_CHECK(is_floating(a.dtype()), "gemm: expected floating tensors, got ", describe(a));
  EMBER_CHECK(gemm_compatible(a) && gemm_compatible(b), "gemm: operands must be 2-D/3-D with unit last stride, got ",
              describe(a), " strides ", shape_str(a.strides()), " and ", describe(b), " strides ",
              shape_str(b.strides()));
  EMBER_CHECK(c.is_contiguous() && (c.dim() == 2 || c.dim() == 3), "gemm: output must be contiguous 2-D/3-D, got ",
              describe(c));
  const int64_t m = ta ? a.size(-1) : a.size(-2), ka = ta ? a.size(-2) : a.size(-1);
  const int64_t kb = tb ? b.size(-1) : b.size(-2), n = tb ? b.size(-2) : b.size(-1);
  EMBER_CHECK(ka == kb, "gemm: inner dimensions differ: op(A) is [", m, ", ", ka, "] (", describe(a), "), op(B) is [",
              kb, ", ", n, "] (", describe(b), ")");
  EMBER_CHECK(c.size(-2) == m && c.size(-1) == n, "gemm: output ", describe(c), " should be [", m, ", ", n, "]");
  if (c.dim() == 3) {
    for (const Tensor* t : {&a, &b})
      EMBER_CHECK(t->dim() == 2 || t->size(0) == c.size(0), "gemm: batch of ", describe(*t), " does not match output ",
                  describe(c));
  } else {
    EMBER_CHECK(a.dim() == 2 && b.dim() == 2, "gemm: 2-D output needs 2-D operands, got ", describe(a), " and ",
                describe(b));
  }
  if (c.numel() == 0) return;
  if (ka == 0) {  // empty inner dimension: C = beta * C
    if (beta == 0.0) {
      fill(c, 0.0);
    } else {
      Tensor cc = c;
      unary(unary_op_v<op::MulScalar>, c, cc, beta);
    }
    return;
  }
  // A 3-D operand against a 2-D one: broadcast the 2-D operand with batch stride 0.
  const Tensor a3 = (c.dim() == 3 && a.dim() == 2) ? a.unsqueeze(0).expand({c.size(0), a.size(0), a.size(1)}) : a;
  const Tensor b3 = (c.dim() == 3 && b.dim() == 2) ? b.unsqueeze(0).expand({c.size(0), b.size(0), b.size(1)}) : b;
  require(table_for<MatmulKernels>(a.device().type).gemm, "gemm", a.device())(a3, ta, b3, tb, c, alpha, beta);
}

}  // namespace ember::kernels
