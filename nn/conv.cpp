/// @file nn/conv.cpp @brief nn::Conv2d: option validation, default init, forward through functional::conv2d.
#include "nn/conv.h"

#include "core/grad_mode.h"
#include "nn/functional.h"
#include "nn/init.h"

namespace ember::nn {

Conv2d::Conv2d(const Conv2dOptions& o) : options_(o) {
  EMBER_CHECK(o.in_channels > 0 && o.out_channels > 0, "Conv2d: in_channels and out_channels must be positive, got ",
              o.in_channels, " and ", o.out_channels);
  EMBER_CHECK(o.kernel_size > 0, "Conv2d: kernel_size must be positive, got ", o.kernel_size);
  EMBER_CHECK(o.stride > 0, "Conv2d: stride must be positive, got ", o.stride);
  EMBER_CHECK(o.padding >= 0, "Conv2d: padding must be >= 0, got ", o.padding);
  weight = register_parameter("weight", empty({o.out_channels, o.in_channels, o.kernel_size, o.kernel_size}));
  if (o.bias) bias = register_parameter("bias", empty({o.out_channels}));
  reset_parameters();
}

void Conv2d::reset_parameters() {
  // torch.nn.Conv2d: kaiming_uniform_(a = sqrt(5)) on the weight and U(+-1/sqrt(fan_in)) on the bias,
  // both U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = in_channels * k * k.
  NoGradGuard no_grad;
  init::default_weight_init(weight);
  if (bias.defined()) init::default_bias_init(bias, init::fan_in(weight));
}

Tensor Conv2d::forward(const Tensor& x) {
  EMBER_CHECK(x.defined() && x.dim() == 4 && x.size(1) == options_.in_channels, str(),
              ": expected input [N, ", options_.in_channels, ", H, W], got ",
              x.defined() ? describe(x) : std::string("an undefined tensor"));
  return functional::conv2d(x, weight, bias, options_.stride, options_.padding);
}

std::string Conv2d::str() const {
  return detail::concat("Conv2d(", options_.in_channels, ", ", options_.out_channels,
                        ", kernel_size=", options_.kernel_size, ", stride=", options_.stride,
                        ", padding=", options_.padding, options_.bias ? "" : ", bias=false", ")");
}

}  // namespace ember::nn
