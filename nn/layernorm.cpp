/// @file nn/layernorm.cpp @brief nn::LayerNorm.
#include "nn/layernorm.h"

#include "core/grad_mode.h"
#include "nn/functional.h"

namespace ember::nn {

LayerNorm::LayerNorm(const LayerNormOptions& o) : options(o) {
  EMBER_CHECK(!o.normalized_shape.empty(), "LayerNorm: normalized_shape must name at least one dim, got []");
  for (int64_t d : o.normalized_shape)
    EMBER_CHECK(d > 0, "LayerNorm: normalized_shape must be positive, got ", shape_str(o.normalized_shape));
  EMBER_CHECK(o.eps > 0.0, "LayerNorm: eps must be positive, got ", o.eps);
  EMBER_CHECK(is_floating(o.dtype), "LayerNorm: parameters must be floating, got dtype ", dtype_name(o.dtype));
  if (!o.elementwise_affine) return;
  const TensorOptions to{o.dtype, o.device};
  weight = register_parameter("weight", ones(o.normalized_shape, to));
  if (o.bias) bias = register_parameter("bias", zeros(o.normalized_shape, to));
}

LayerNorm::LayerNorm(int64_t normalized_shape, double eps, bool elementwise_affine)
    : LayerNorm(LayerNormOptions{.normalized_shape = {normalized_shape}, .eps = eps,
                                 .elementwise_affine = elementwise_affine}) {}

Tensor LayerNorm::forward(const Tensor& x) {
  return functional::layer_norm(x, options.normalized_shape, weight, bias, options.eps);
}

void LayerNorm::reset_parameters() {
  NoGradGuard no_grad;
  if (weight.defined()) weight.fill_(1.0);
  if (bias.defined()) bias.zero_();
}

std::string LayerNorm::str() const {
  return detail::concat("LayerNorm(", shape_str(options.normalized_shape), ", eps=", options.eps,
                        ", elementwise_affine=", options.elementwise_affine ? "true" : "false",
                        options.elementwise_affine && !options.bias ? ", bias=false" : "", ")");
}

}  // namespace ember::nn
