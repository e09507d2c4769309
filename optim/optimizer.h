/// @file optim/optimizer.h @brief Optimizer base: parameter groups, zero_grad that keeps buffers, named-tensor state_dict, the fused scaled step.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "core/step_status.h"

namespace ember::optim {


/// A set of parameters sharing a learning rate and weight decay (PyTorch's param_groups).
struct ParamGroup {
  std::vector<Tensor> params;
  double lr = 0.0;
  double weight_decay = 0.0;
  /// The lr the group started with; learning-rate schedules scale from it. Set by the optimizer's
  /// constructor when left at its default (negative).
  double initial_lr = -1.0;
};

/// Base of SGD and AdamW, in the spirit of torch::optim::Optimizer. Parameters must be leaf tensors
/// that require grad, all on one device, each in at most one group. Updates run under NoGradGuard and
/// skip parameters whose .grad is undefined (as PyTorch skips `grad is None`).
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// One update of every parameter with a gradient.
  void step() { step_gated(1.0, {}); }
  /// One update reading each gradient as grad * grad_scale, without writing the scaled gradient back:
  /// the gradient accumulator folds the window's 1/count in here so a window end is one pass over the
  /// weights. The gate (core/step_status.h) connects the update to the device-resident step status:
  /// reporting the scaled gradients' sum of squares and non-finite flag into it, or reading from it
  /// whether to skip and how much to clip, decided on the device. No host synchronization.
  virtual void step_gated(double grad_scale, const StepGate& gate) = 0;
  /// step_gated with a reporting gate, read back: the sum of squares of the scaled gradients and whether
  /// any was NaN/Inf (one host synchronization on a GPU).
  ScaleResult step_scaled(double grad_scale);
  /// The device skipped the last step_gated (its reading gate found non-finite gradients): undoes the
  /// host-side bookkeeping that step made (step counts, state created for it), so the optimizer is as
  /// if the step had never been asked for. Call it before the next step.
  virtual void undo_skipped_step() { --steps_; }

  /// Zeros every parameter's .grad in place (buffers stay allocated, so later micro-batches accumulate
  /// into the same memory); undefined grads stay undefined.
  void zero_grad();

  std::vector<ParamGroup>& param_groups() { return groups_; }
  const std::vector<ParamGroup>& param_groups() const { return groups_; }
  /// All parameters, group by group (the flat index used by state_dict()).
  std::vector<Tensor> parameters() const;
  /// The device the parameters live on now. The optimizer holds the parameters themselves, and
  /// Module::to moves them in place, so an optimizer built before model.to(device) follows the model
  /// (its state is created on the parameters' device at the first step).
  Device device() const { return groups_.front().params.front().device(); }
  /// Learning rate of the first group.
  double lr() const { return groups_.front().lr; }
  /// Sets the learning rate of every group (throws when negative).
  void set_lr(double lr);
  /// Number of step() / step_scaled() calls made (restored by load_state_dict).
  int64_t steps() const { return steps_; }

  /// State as named tensors, parameters keyed by flat index: "0.momentum_buffer", "3.exp_avg",
  /// "3.step", plus "step" (the optimizer's step count) and "group.<g>.lr". The caller saves them under
  /// a prefix such as "optim." in a safetensors file. The tensors are copies (a snapshot: later steps do
  /// not change them, and writing to them does not change the optimizer), unlike PyTorch's references.
  virtual NamedTensors state_dict() const;
  /// The same, parameters keyed by their names in `named_params` ("fc1.weight.exp_avg"), which survives
  /// reordering of groups. Throws if a parameter of the optimizer has no name there.
  NamedTensors state_dict(const NamedTensors& named_params) const;
  /// Loads a state_dict() (copying to the parameters' device). Throws, naming the entry, on an unknown
  /// key, an unknown slot or a shape that does not match its parameter. Parameters without saved state
  /// start fresh, as in PyTorch.
  virtual void load_state_dict(const NamedTensors& state);
  /// Loads a state_dict(named_params).
  void load_state_dict(const NamedTensors& state, const NamedTensors& named_params);

 protected:
  /// Validates the groups (non-empty, leaves requiring grad, floating, one device, no duplicates,
  /// lr >= 0, weight_decay >= 0); `name` prefixes error messages ("SGD").
  Optimizer(std::vector<ParamGroup> groups, std::string name);

  /// The state slots of flat parameter i ({"momentum_buffer", buf}, ...); undefined tensors are skipped.
  virtual NamedTensors param_state(size_t i) const = 0;
  /// Installs one saved slot of flat parameter i (already on the parameter's device, shape checked for
  /// tensors of the parameter's shape); throws naming the slot when it is unknown.
  virtual void set_param_state(size_t i, const std::string& slot, const Tensor& value) = 0;
  /// Flat index of group g's first parameter.
  size_t group_offset(size_t g) const { return offsets_[g]; }
  void count_step() { ++steps_; }
  const std::string& name() const { return name_; }

 private:
  NamedTensors state_dict_keyed(const std::vector<std::string>& keys) const;
  void load_state_dict_keyed(const NamedTensors& state, const std::vector<std::string>& keys);
  std::vector<std::string> names_for(const NamedTensors& named_params) const;

  std::string name_;
  std::vector<ParamGroup> groups_;
  std::vector<size_t> offsets_;
  int64_t steps_ = 0;
};

}  // namespace ember::optim
