/// @file nn/activation.h @brief Parameter-free layers: ReLU, GELU, SiLU, Softplus, Flatten, Dropout.
#pragma once
#include "nn/module.h"

namespace ember::nn {

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string str() const override { return "ReLU()"; }
};

/// gelu(x, approximate): approximate "none" (erf) or "tanh", as torch.nn.GELU.
class GELU : public Module {
 public:
  explicit GELU(std::string approximate = "none");
  Tensor forward(const Tensor& x) override;
  std::string str() const override { return "GELU(approximate='" + approximate_ + "')"; }

 private:
  std::string approximate_;
};

class SiLU : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string str() const override { return "SiLU()"; }
};

/// log(1 + exp(x)) with torch.nn.Softplus's defaults (beta 1, threshold 20).
class Softplus : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string str() const override { return "Softplus()"; }
};

/// Flattens dims [start_dim, end_dim] (default: everything but the batch dim, as torch.nn.Flatten).
class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1) : start_dim_(start_dim), end_dim_(end_dim) {}
  Tensor forward(const Tensor& x) override;
  std::string str() const override { return "Flatten()"; }

 private:
  int64_t start_dim_, end_dim_;
};

/// Dropout with a counter-based mask (reproducible from the generator's seed); identity in eval mode.
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;
  std::string str() const override { return "Dropout(p=" + std::to_string(p_) + ")"; }

 private:
  double p_;
  Generator* gen_;
};

}  // namespace ember::nn
