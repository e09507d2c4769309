/// @file nn/linear.h @brief nn::Linear: y = x W^T + b with PyTorch's default initialization and a fused weight-gradient GEMM.
#pragma once
#include "nn/module.h"

namespace ember::nn {

struct LinearOptions {
  int64_t in_features = 0;
  int64_t out_features = 0;
  bool bias = true;
  DType dtype = DType::f32;
  Device device = Device::cpu();
};

class Linear : public Module {
 public:
  explicit Linear(const LinearOptions& o);
  Linear(int64_t in_features, int64_t out_features, bool bias = true)
      : Linear(LinearOptions{in_features, out_features, bias}) {}
  Tensor forward(const Tensor& x) override;
  std::string str() const override;

  Tensor weight;  ///< [out, in]
  Tensor bias;    ///< [out] or undefined
  LinearOptions options;
};

}  // namespace ember::nn
