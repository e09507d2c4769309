/// @file optim/sgd.h @brief SGD with momentum, dampening, nesterov and (coupled) weight decay: PyTorch's rule, one fused multi-tensor kernel per group.
#pragma once
#include "optim/optimizer.h"

namespace ember::optim {

struct SGDOptions {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  bool nesterov = false;
  double weight_decay = 0.0;
};

/// torch.optim.SGD: g = grad + wd * p; buf = momentum * buf + (1 - dampening) * g (buf = g on the first
/// step); g = nesterov ? g + momentum * buf : buf; p -= lr * g. Validation: lr >= 0, momentum >= 0,
/// 0 <= dampening <= 1, weight_decay >= 0, nesterov needs momentum > 0 and dampening == 0.
class SGD final : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, SGDOptions options);
  /// Groups carry their own lr and weight_decay; the other options apply to all.
  SGD(std::vector<ParamGroup> groups, SGDOptions options);

  void step_gated(double grad_scale, const StepGate& gate) override;
  void undo_skipped_step() override;
  const SGDOptions& options() const { return options_; }

 protected:
  NamedTensors param_state(size_t i) const override;
  void set_param_state(size_t i, const std::string& slot, const Tensor& value) override;

 private:
  SGDOptions options_;
  std::vector<Tensor> momentum_buffers_;  ///< per flat parameter; undefined until its first step
  std::vector<size_t> fresh_last_;        ///< buffers the last step created (undone when it was skipped)
};

}  // namespace ember::optim
