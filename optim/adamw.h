/// @file optim/adamw.h @brief AdamW (decoupled weight decay, bias-corrected moments): PyTorch's rule, one fused multi-tensor kernel per group.
#pragma once
#include <utility>

#include "optim/optimizer.h"

namespace ember::optim {

struct AdamWOptions {
  double lr = 1e-3;
  std::pair<double, double> betas = {0.9, 0.999};
  double eps = 1e-8;
  double weight_decay = 1e-2;
};

/// torch.optim.AdamW (amsgrad off): with t the parameter's step count (1-based),
/// p *= 1 - lr * wd; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
/// p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
/// Validation: lr >= 0, eps >= 0, 0 <= beta < 1, weight_decay >= 0.
class AdamW final : public Optimizer {
 public:
  AdamW(std::vector<Tensor> params, AdamWOptions options = {});
  /// Groups carry their own lr and weight_decay; betas and eps apply to all.
  AdamW(std::vector<ParamGroup> groups, AdamWOptions options);

  void step_gated(double grad_scale, const StepGate& gate) override;
  void undo_skipped_step() override;
  const AdamWOptions& options() const { return options_; }

 protected:
  NamedTensors param_state(size_t i) const override;
  void set_param_state(size_t i, const std::string& slot, const Tensor& value) override;

 private:
  struct State {
    Tensor exp_avg, exp_avg_sq;  ///< undefined until the parameter's first step
    int64_t step = 0;
  };
  AdamWOptions options_;
  std::vector<State> state_;  ///< per flat parameter
  std::vector<size_t> stepped_last_;  ///< parameters the last step counted (undone when it was skipped)
};

}  // namespace ember::optim
