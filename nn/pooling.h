/// @file nn/pooling.h @brief nn::MaxPool2d: 2-D max pooling layer (square window, stride defaulting to the window).
#pragma once
#include <cstdint>
#include <string>

#include "nn/module.h"

namespace ember::nn {

struct MaxPool2dOptions {
  int64_t kernel_size = 2;
  int64_t stride = 0;   ///< 0: equal to kernel_size (PyTorch's default)
  int64_t padding = 0;  ///< at most kernel_size / 2; pads with -inf
};

/// y = max over each window of x [N, C, H, W] (or [C, H, W]); no parameters.
class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(const MaxPool2dOptions& options);
  explicit MaxPool2d(int64_t kernel_size) : MaxPool2d(MaxPool2dOptions{.kernel_size = kernel_size}) {}

  Tensor forward(const Tensor& x) override;
  std::string str() const override;
  const MaxPool2dOptions& options() const { return options_; }

 private:
  MaxPool2dOptions options_;
};

}  // namespace ember::nn
