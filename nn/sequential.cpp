/// @file nn/sequential.cpp @brief nn::Sequential.
#include "nn/sequential.h"

namespace ember::nn {

Sequential::Sequential(std::initializer_list<std::shared_ptr<Module>> modules) {
  for (const auto& m : modules) push_back(m);
}

Sequential& Sequential::push_back(std::shared_ptr<Module> m) { return push_back(std::to_string(layers_.size()), m); }

Sequential& Sequential::push_back(const std::string& name, std::shared_ptr<Module> m) {
  layers_.push_back(register_module(name, std::move(m)));
  return *this;
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (auto& l : layers_) h = l->forward(h);
  return h;
}

std::string Sequential::str() const {
  std::string s = "Sequential(";
  for (size_t i = 0; i < layers_.size(); ++i) s += (i ? ", " : "") + layers_[i]->str();
  return s + ")";
}

}  // namespace ember::nn
