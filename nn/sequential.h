/// @file nn/sequential.h @brief nn::Sequential: children named "0", "1", ... (or given names), forward chains them.
#pragma once
#include "nn/module.h"

namespace ember::nn {

class Sequential : public Module {
 public:
  Sequential() = default;
  Sequential(std::initializer_list<std::shared_ptr<Module>> modules);
  /// Appends a child named by its index ("0", "1", ...), as torch.nn.Sequential.
  Sequential& push_back(std::shared_ptr<Module> m);
  /// Appends a named child (names appear in state_dict keys, e.g. "fc1.weight").
  Sequential& push_back(const std::string& name, std::shared_ptr<Module> m);
  Tensor forward(const Tensor& x) override;
  size_t size() const { return layers_.size(); }
  std::shared_ptr<Module> operator[](size_t i) const { return layers_.at(i); }
  std::string str() const override;

 private:
  std::vector<std::shared_ptr<Module>> layers_;
};

}  // namespace ember::nn
