/// @file kernels/dropout.cpp @brief Device-generic dropout entry point.
#include "kernels/dropout.h"

#include "kernels/dispatch.h"

namespace ember::kernels {

void dropout(const Tensor& x, Tensor& out, double p, uint64_t seed, uint64_t offset) {
  check_same_device("dropout", x, out);
  check_same_dtype("dropout", x, out);
  EMBER_CHECK(is_floating(x.dtype()) && x.is_contiguous() && out.is_contiguous() && x.shape() == out.shape(),
              "dropout: expected contiguous floating tensors of one shape, got ", describe(x), " and ", describe(out));
  EMBER_CHECK(p >= 0.0 && p < 1.0, "dropout: p must be in [0, 1), got ", p);
  if (x.numel() == 0) return;
  require(table_for<DropoutKernels>(x.device().type).dropout, "dropout", x.device())(x, out, p, seed, offset);
}

}  // namespace ember::kernels
