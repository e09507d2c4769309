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

namespace {

void check_status(const char* op, const Tensor& status) {
  EMBER_CHECK(status.defined() && status.dtype() == DType::f64 && status.numel() == kStatusSize &&
                  status.is_contiguous(),
              op, ": the step status must be a contiguous f64 tensor of ", kStatusSize, " values (make_step_status), got ",
              describe(status));
}

}  // namespace

Tensor make_step_status(Device d) {
  Tensor status = empty({kStatusSize}, TensorOptions{}.set_dtype(DType::f64).set_device(d));
  zero_status(status);
  return status;
}

void scale_many(std::span<Tensor> ts, double s, Tensor& status) {
  check_status("scale_many", status);
  for (const Tensor& t : ts) {
    check_same_device("scale_many", status, t);
    check_same_dtype("scale_many", ts[0], t);
    EMBER_CHECK(t.is_contiguous() && is_floating(t.dtype()), "scale_many: expected contiguous floating tensors, got ",
                describe(t));
  }
  require(table(status.device()).scale_many, "scale_many", status.device())(ts, s, status);
}

void add_to_status(Tensor& status, int64_t slot, const Tensor& x, double alpha) {
  check_status("add_to_status", status);
  check_same_device("add_to_status", status, x);
  EMBER_CHECK(slot >= 0 && slot < kStatusSize, "add_to_status: slot ", slot, " is outside [0, ", kStatusSize, ")");
  EMBER_CHECK(x.numel() == 1 && is_floating(x.dtype()), "add_to_status: expected a floating scalar, got ",
              describe(x));
  require(table(status.device()).add_to_status, "add_to_status", status.device())(status, slot, x, alpha);
}

void zero_status(Tensor& status) {
  check_status("zero_status", status);
  require(table(status.device()).zero_status, "zero_status", status.device())(status);
}

ScaleResult read_scale_result(const Tensor& status) {
  check_status("read_scale_result", status);
  const std::vector<double> v = status.to_vector<double>();
  return {v[kStatusSumSquares], v[kStatusNonFinite] != 0.0};
}

ScaleResult scale_many(std::span<Tensor> ts, double s) {
  if (ts.empty()) return {};
  Tensor status = make_step_status(ts[0].device());
  scale_many(ts, s, status);
  return read_scale_result(status);
}

}  // namespace ember::kernels
