/// @file kernels/accumulate.cpp @brief Device-generic entry points of the fused accumulate / scale kernels.
#include "kernels/accumulate.h"

#include "kernels/dispatch.h"

namespace ember::kernels {
namespace {
void check_pair(const char* op, const Tensor& dst, const Tensor& src) {
  check_same_device(op, dst, src);
  check_same_dtype(op, dst, src);
  EMBER_CHECK(is_floating(dst.dtype()), op, ": expected floating tensors, got ", describe(dst));
  EMBER_CHECK(dst.numel() == src.numel(), op, ": size mismatch, destination ", describe(dst), " vs source ",
              describe(src));
  EMBER_CHECK(dst.is_contiguous() && src.is_contiguous(), op, ": expected contiguous tensors, got ", describe(dst),
              " and ", describe(src));
}
const AccumulateKernels& table(Device d) { return table_for<AccumulateKernels>(d.type); }
}  // namespace

void accumulate(Tensor& dst, const Tensor& src, double alpha) {
  check_pair("accumulate", dst, src);
  if (dst.numel() == 0) return;
  require(table(dst.device()).accumulate, "accumulate", dst.device())(dst, src, alpha);
}

void accumulate_many(std::span<Tensor> dsts, std::span<const Tensor> srcs, double alpha) {
  EMBER_CHECK(dsts.size() == srcs.size(), "accumulate_many: ", dsts.size(), " destinations but ", srcs.size(),
              " sources");
  if (dsts.empty()) return;
  for (size_t i = 0; i < dsts.size(); ++i) {
    check_pair("accumulate_many", dsts[i], srcs[i]);
    check_same_device("accumulate_many", dsts[0], dsts[i]);
    check_same_dtype("accumulate_many", dsts[0], dsts[i]);
  }
  require(table(dsts[0].device()).accumulate_many, "accumulate_many", dsts[0].device())(dsts, srcs, alpha);
}

ScaleResult scale_many(std::span<Tensor> ts, double s) {
  if (ts.empty()) return {};
  for (const Tensor& t : ts) {
    check_same_device("scale_many", ts[0], t);
    check_same_dtype("scale_many", ts[0], t);
    EMBER_CHECK(t.is_contiguous() && is_floating(t.dtype()), "scale_many: expected contiguous floating tensors, got ",
                describe(t));
  }
  return require(table(ts[0].device()).scale_many, "scale_many", ts[0].device())(ts, s);
}

}  // namespace ember::kernels
