/// @file nn/module.h @brief nn::Module: named, ordered parameters / buffers / submodules, train/eval, to(Device), state_dict.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace ember::nn {

/// Base class of layers and models, in the spirit of torch::nn::Module. A model registers its
/// parameters, buffers and submodules by name in constructor order; names nest with dots exactly as
/// PyTorch forms them ("fc1.weight", "bn1.running_mean", "features.0.weight").
class Module : public std::enable_shared_from_this<Module> {
 public:
  virtual ~Module() = default;

  /// The single-input forward pass. Layers override it; containers chain it.
  virtual Tensor forward(const Tensor& x);
  Tensor operator()(const Tensor& x) { return forward(x); }

  /// Registers a parameter (marked requires_grad) and returns a handle to it (layers keep the handle
  /// as a member). Throws on an empty, duplicate or dotted name.
  Tensor register_parameter(const std::string& name, Tensor t, bool requires_grad = true);
  /// Registers a buffer (state that is saved but not trained, e.g. running_mean).
  Tensor register_buffer(const std::string& name, Tensor t);
  /// Registers a submodule and returns it (typed).
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    register_module_impl(name, m);
    return m;
  }

  /// Recursive, dotted names, registration order; parameters() drops the names.
  NamedTensors named_parameters() const;
  std::vector<Tensor> parameters() const;
  NamedTensors named_buffers() const;
  std::vector<Tensor> buffers() const;
  /// Direct children, in order.
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const;

  /// Training mode (default) vs evaluation mode (BatchNorm uses running stats, Dropout is identity).
  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  /// Moves every parameter and buffer to `d` in place: the TensorImpl behind each registered tensor
  /// is updated (storage, strides, device), so handles kept by layers stay valid; grads move too.
  virtual void to(Device d);
  /// Device of the first parameter/buffer (cpu when the module has none).
  Device device() const;

  /// Zeros every parameter's .grad in place (keeps the buffers allocated; no-op where undefined).
  void zero_grad();

  /// Parameters and buffers by dotted name (buffers include e.g. bn1.num_batches_tracked).
  NamedTensors state_dict() const;
  /// Copies values in (converting device), strictly: missing, unexpected or mis-shaped entries throw an
  /// ember::Error naming every such entry.
  void load_state_dict(const NamedTensors& state);

  /// Called by the gradient accumulator once at the end of every accumulation window (after the
  /// optimizer step); recurses into children. BatchNorm with window-merged statistics updates its
  /// running stats here.
  virtual void finish_window();
  /// Called instead of finish_window() at the end of a window whose update was skipped (non-finite
  /// gradients): drops what finish_window() would have applied (BatchNorm's window statistics);
  /// recurses into children.
  virtual void discard_window();

  /// Short type name used in printing, e.g. "Linear(in=784, out=512)".
  virtual std::string str() const { return "Module"; }

 protected:
  void register_module_impl(const std::string& name, std::shared_ptr<Module> m);

 private:
  void collect(const std::string& prefix, bool params, NamedTensors& out) const;
  /// Names of this module's own parameters, buffers and children (for duplicate checks).
  std::vector<std::string> local_names() const;

  bool training_ = true;
  NamedTensors params_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

}  // namespace ember::nn
