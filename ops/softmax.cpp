/// @file ops/softmax.cpp @brief softmax/log_softmax: the reduced dim is moved last, the row kernel runs, the result is moved back.
#include "ops/softmax.h"

#include "ops/autograd/node.h"
#include "kernels/softmax.h"

namespace ember {
namespace {

struct SoftmaxBackward final : Node {
  Tensor y;  // contiguous, reduced dim last
  int64_t dim = 0;
  bool log = false;
  std::string name() const override { return log ? "LogSoftmaxBackward" : "SoftmaxBackward"; }
  void release_saved() override { y = Tensor(); }
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor gl = g.transpose(dim, -1).contiguous();
    Tensor gx = empty(gl.shape(), TensorOptions{g.dtype(), g.device()});
    kernels::softmax_backward(y, gl, gx, log);
    return {gx.transpose(dim, -1)};
  }
};

Tensor softmax_impl(const Tensor& x, int64_t dim, bool log) {
  const char* what = log ? "log_softmax" : "softmax";
  EMBER_CHECK(x.defined() && is_floating(x.dtype()), what, ": expected a floating tensor, got ", describe(x));
  EMBER_CHECK(x.dim() >= 1, what, ": expected at least 1 dim, got ", describe(x));
  const int64_t d = wrap_dim(dim, x.dim(), what);
  Tensor xl = x.detach().transpose(d, -1).contiguous();
  Tensor y = empty(xl.shape(), TensorOptions{x.dtype(), x.device()});
  kernels::softmax_forward(xl, y, log);
  Tensor out = y.transpose(d, -1);
  if (any_requires_grad({&x})) {
    auto node = std::make_shared<SoftmaxBackward>();
    node->y = y;
    node->dim = d;
    node->log = log;
    record(node, {&x}, out);
  }
  return out;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, true); }

}  // namespace ember
