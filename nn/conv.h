/// @file nn/conv.h @brief nn::Conv2d: 2-D convolution layer (NCHW, square kernel, stride, zero padding) with PyTorch's parameter names and default init.
#pragma once
#include <cstdint>
#include <string>

#include "nn/module.h"

namespace ember::nn {

/// Options of Conv2d (groups = 1, dilation = 1). Usable with designated initializers:
/// Conv2dOptions{.in_channels = 1, .out_channels = 16, .kernel_size = 3, .padding = 1}.
struct Conv2dOptions {
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t kernel_size = 1;
  int64_t stride = 1;
  int64_t padding = 0;
  bool bias = true;
};

/// y = conv2d(x, weight, bias) for x [N, in_channels, H, W]. Parameters "weight" [out, in, k, k] and
/// "bias" [out] (when options.bias), both drawn from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
/// fan_in = in * k * k, as torch.nn.Conv2d's default init. The weight gradient is accumulated straight
/// into weight.grad by the backward GEMMs (see ops/functional_conv.h).
class Conv2d : public Module {
 public:
  explicit Conv2d(const Conv2dOptions& options);
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size)
      : Conv2d(Conv2dOptions{.in_channels = in_channels, .out_channels = out_channels, .kernel_size = kernel_size}) {}

  Tensor forward(const Tensor& x) override;
  std::string str() const override;
  /// Redraws weight and bias from the default distribution (in place).
  void reset_parameters();

  const Conv2dOptions& options() const { return options_; }
  Tensor weight;
  Tensor bias;  ///< undefined when options.bias is false

 private:
  Conv2dOptions options_;
};

}  // namespace ember::nn
