/// @file nn/linear.cpp @brief nn::Linear.
#include "nn/linear.h"

#include "nn/functional.h"
#include "nn/init.h"

namespace ember::nn {

Linear::Linear(const LinearOptions& o) : options(o) {
  EMBER_CHECK(o.in_features > 0 && o.out_features > 0, "Linear: features must be positive, got in=", o.in_features,
              " out=", o.out_features);
  const TensorOptions to{o.dtype, o.device};
  Tensor w = empty({o.out_features, o.in_features}, to);
  init::default_weight_init(w);
  weight = register_parameter("weight", w);
  if (o.bias) {
    Tensor b = empty({o.out_features}, to);
    init::default_bias_init(b, o.in_features);
    bias = register_parameter("bias", b);
  }
}

Tensor Linear::forward(const Tensor& x) {
  EMBER_CHECK(x.dim() == 2 && x.size(1) == options.in_features, str(), ": expected input [N, ",
              options.in_features, "], got ", describe(x));
  return functional::linear(x, weight, bias);
}

std::string Linear::str() const {
  return "Linear(in_features=" + std::to_string(options.in_features) +
         ", out_features=" + std::to_string(options.out_features) + ", bias=" + (options.bias ? "true" : "false") +
         ")";
}

}  // namespace ember::nn
