/// @file nn/layernorm.h @brief nn::LayerNorm with torch.nn.LayerNorm semantics (normalized_shape, eps, elementwise_affine, bias), on the fused layer_norm kernels.
#pragma once
#include <cstdint>

#include "nn/module.h"

namespace ember::nn {

struct LayerNormOptions {
  Shape normalized_shape;          ///< the trailing dims normalized over (the constructors set it)
  double eps = 1e-5;
  bool elementwise_affine = true;  ///< learnable "weight" (ones) and "bias" (zeros) of normalized_shape
  bool bias = true;                ///< with elementwise_affine: also the bias (torch >= 2.1's bias=False)
  DType dtype = DType::f32;
  Device device = Device::cpu();
};

/// Layer normalization over the trailing dims normalized_shape of its input [*, normalized_shape]:
/// y = (x - mean) / sqrt(var + eps) * weight + bias with each slice's mean and biased variance
/// (functional::layer_norm). Parameters "weight" and "bias" as PyTorch names them. The same in training
/// and evaluation (no running statistics).
class LayerNorm : public Module {
 public:
  explicit LayerNorm(const LayerNormOptions& options);
  /// torch.nn.LayerNorm(normalized_shape, eps, elementwise_affine) over the last dim.
  explicit LayerNorm(int64_t normalized_shape, double eps = 1e-5, bool elementwise_affine = true);
  Tensor forward(const Tensor& x) override;
  std::string str() const override;
  /// weight back to ones, bias to zeros.
  void reset_parameters();

  Tensor weight;  ///< normalized_shape, or undefined without elementwise_affine
  Tensor bias;    ///< normalized_shape, or undefined without elementwise_affine or bias
  LayerNormOptions options;
};

}  // namespace ember::nn
