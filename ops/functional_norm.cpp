/// @file ops/functional_norm.cpp @brief layer_norm forward and its backward node (kernels/layernorm.h does the work).
#include "ops/functional_norm.h"

#include <utility>

#include "kernels/layernorm.h"
#include "ops/autograd/node.h"

namespace ember {
namespace {

class LayerNormBackward final : public Node {
 public:
  Tensor x, mean, rstd, weight;  // detached: x [rows, n], mean/rstd [rows], weight [n] or undefined
  Shape x_shape, param_shape;
  bool has_weight = false, has_bias = false;

  std::string name() const override { return "LayerNormBackward"; }
  void release_saved() override { x = mean = rstd = weight = Tensor(); }

  std::vector<Tensor> apply(const Tensor& grad_output) override {
    const Tensor dy = grad_output.contiguous().reshape(x.shape());
    const TensorOptions opts{x.dtype(), x.device()};
    const int64_t n = x.size(1);
    Tensor dx, dw, db;
    if (next_edges[0].valid()) dx = empty(x.shape(), opts);
    if (has_weight && next_edges[1].valid()) dw = empty({n}, opts);
    if (has_bias && next_edges[2].valid()) db = empty({n}, opts);
    kernels::layer_norm_backward(dy, x, mean, rstd, weight, dx, dw, db);
    return {dx.defined() ? dx.view(x_shape) : Tensor(), dw.defined() ? dw.view(param_shape) : Tensor(),
            db.defined() ? db.view(param_shape) : Tensor()};
  }
};

/// weight or bias: undefined, or of shape normalized_shape and x's dtype and device.
void check_param(const Tensor& x, const Tensor& t, const Shape& normalized_shape, const char* name) {
  if (!t.defined()) return;
  EMBER_CHECK(t.shape() == normalized_shape && t.dtype() == x.dtype() && t.device() == x.device(), "layer_norm: ",
              name, " must be ", dtype_name(x.dtype()), shape_str(normalized_shape), " on ", x.device(),
              " (normalized_shape of input ", describe(x), "), got ", describe(t));
}

}  // namespace

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                  double eps) {
  EMBER_CHECK(x.defined(), "layer_norm: undefined input");
  EMBER_CHECK(!normalized_shape.empty(), "layer_norm: normalized_shape must name at least one dim, got []");
  for (int64_t d : normalized_shape)
    EMBER_CHECK(d > 0, "layer_norm: normalized_shape must be positive, got ", shape_str(normalized_shape));
  const int64_t k = static_cast<int64_t>(normalized_shape.size());
  const bool fits = x.dim() >= k && Shape(x.shape().end() - k, x.shape().end()) == normalized_shape;
  EMBER_CHECK(fits, "layer_norm: expected an input [*, ", shape_str(normalized_shape).substr(1),
              " (ending with normalized_shape ", shape_str(normalized_shape), "), got ", describe(x));
  EMBER_CHECK(is_floating(x.dtype()), "layer_norm: expected a floating input, got ", describe(x));
  EMBER_CHECK(eps > 0.0, "layer_norm: eps must be positive, got ", eps);
  check_param(x, weight, normalized_shape, "weight");
  check_param(x, bias, normalized_shape, "bias");

  const int64_t n = shape_numel(normalized_shape), rows = x.numel() / n;
  const TensorOptions opts{x.dtype(), x.device()};
  const Tensor xc = x.detach().contiguous().reshape({rows, n});
  const Tensor w = weight.defined() ? weight.detach().contiguous().reshape({n}) : Tensor();
  const Tensor b = bias.defined() ? bias.detach().contiguous().reshape({n}) : Tensor();
  Tensor y = empty({rows, n}, opts), mean = empty({rows}, opts), rstd = empty({rows}, opts);
  kernels::layer_norm_forward(xc, w, b, eps, y, mean, rstd);
  y = y.view(x.shape());

  if (any_requires_grad({&x, &weight, &bias})) {
    auto node = std::make_shared<LayerNormBackward>();
    node->x = xc;
    node->mean = mean;
    node->rstd = rstd;
    node->weight = w;
    node->x_shape = x.shape();
    node->param_shape = normalized_shape;
    node->has_weight = weight.defined();
    node->has_bias = bias.defined();
    record(node, {&x, &weight, &bias}, y);
  }
  return y;
}

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  EMBER_CHECK(x.defined() && x.dim() >= 1, "layer_norm: expected an input [*, n], got ",
              x.defined() ? describe(x) : std::string("an undefined tensor"));
  return layer_norm(x, Shape{x.size(-1)}, weight, bias, eps);
}

}  // namespace ember
