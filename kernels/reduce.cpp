/// @file kernels/reduce.cpp @brief Device-generic reduce entry point.
#include "kernels/reduce.h"

#include "kernels/dispatch.h"

namespace ember::kernels {

void reduce(ReduceOp op, const Tensor& x, int64_t outer, int64_t k, int64_t inner, double scale, Tensor& out,
            Tensor* indices) {
  check_same_device("reduce", x, out);
  check_same_dtype("reduce", x, out);
  EMBER_CHECK(x.is_contiguous() && out.is_contiguous(), "reduce: expected contiguous tensors, got ", describe(x),
              " and ", describe(out));
  EMBER_CHECK(outer * k * inner == x.numel() && outer * inner == out.numel(), "reduce: view [", outer, ", ", k, ", ",
              inner, "] does not match input ", describe(x), " / output ", describe(out));
  EMBER_CHECK(k > 0 || op == ReduceOp::Sum, "max: cannot reduce over an empty dimension of ", describe(x));
  if (indices) {
    EMBER_CHECK(indices->dtype() == DType::i64 && indices->numel() == out.numel() && indices->is_contiguous() &&
                    indices->device() == x.device(),
                "reduce: indices must be contiguous i64 with ", out.numel(), " elements, got ", describe(*indices));
  }
  if (out.numel() == 0) return;
  require(table_for<ReduceKernels>(x.device().type).reduce, "reduce", x.device())(op, x, outer, k, inner, scale, out,
                                                                                  indices);
}

void reduce_max_backward(const Tensor& gy, const Tensor& indices, int64_t outer, int64_t k, int64_t inner,
                         Tensor& gx) {
  check_same_device("max_backward", gy, gx);
  check_same_device("max_backward", gy, indices);
  check_same_dtype("max_backward", gy, gx);
  EMBER_CHECK(gy.is_contiguous() && gx.is_contiguous() && indices.is_contiguous() && indices.dtype() == DType::i64 &&
                  gy.numel() == outer * inner && indices.numel() == outer * inner && gx.numel() == outer * k * inner,
              "max_backward: bad operands ", describe(gy), ", ", describe(indices), ", ", describe(gx));
  if (gy.numel() == 0) return;
  require(table_for<ReduceKernels>(gy.device().type).max_backward, "max_backward", gy.device())(gy, indices, outer, k,
                                                                                                inner, gx);
}

}  // namespace ember::kernels
