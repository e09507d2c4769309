/// @file benchmarks/param_lists.cpp @brief Builds the benchmark parameter lists (CNN and MLP from Ember's nn layers, a 100M transformer-like list by hand).
#include "benchmarks/param_lists.h"

#include <memory>

#include "nn/batchnorm.h"
#include "nn/conv.h"
#include "nn/linear.h"
#include "nn/sequential.h"

namespace ember::bench {

int64_t ParamList::numel() const {
  int64_t n = 0;
  for (const Shape& s : shapes) n += shape_numel(s);
  return n;
}

namespace {

ParamList from_module(const std::string& name, const nn::Module& m) {
  ParamList l{name, {}};
  for (const Tensor& p : m.parameters()) l.shapes.push_back(p.shape());
  return l;
}

}  // namespace

ParamList cnn_params() {
  nn::Sequential net;
  net.push_back("conv1", std::make_shared<nn::Conv2d>(
                             nn::Conv2dOptions{.in_channels = 1, .out_channels = 16, .kernel_size = 3, .padding = 1}));
  net.push_back("bn1", std::make_shared<nn::BatchNorm2d>(16));
  net.push_back("conv2", std::make_shared<nn::Conv2d>(
                             nn::Conv2dOptions{.in_channels = 16, .out_channels = 32, .kernel_size = 3, .padding = 1}));
  net.push_back("bn2", std::make_shared<nn::BatchNorm2d>(32));
  net.push_back("fc", std::make_shared<nn::Linear>(1568, 10));
  return from_module("cnn", net);
}

ParamList mlp_params() {
  nn::Sequential net;
  net.push_back("fc1", std::make_shared<nn::Linear>(784, 512));
  net.push_back("bn1", std::make_shared<nn::BatchNorm1d>(512));
  net.push_back("fc2", std::make_shared<nn::Linear>(512, 256));
  net.push_back("bn2", std::make_shared<nn::BatchNorm1d>(256));
  net.push_back("fc3", std::make_shared<nn::Linear>(256, 10));
  return from_module("mlp", net);
}

ParamList large_params() {
  constexpr int64_t d = 1024, blocks = 8;
  ParamList l{"100m", {}};
  for (int64_t b = 0; b < blocks; ++b) {
    for (const Shape& s : std::vector<Shape>{{d}, {d},                   // ln1 weight, bias
                                             {3 * d, d}, {3 * d},        // qkv
                                             {d, d}, {d},                // attention projection
                                             {d}, {d},                   // ln2
                                             {4 * d, d}, {4 * d},        // mlp up
                                             {d, 4 * d}, {d}})           // mlp down
      l.shapes.push_back(s);
  }
  return l;
}

std::vector<ParamList> all_param_lists() { return {cnn_params(), mlp_params(), large_params()}; }

std::vector<BnCase> bn_cases(int64_t large_batch) {
  return {{"mlp_bn1", {32, 512}},
          {"cnn_bn1", {32, 16, 28, 28}},
          {"cnn_bn2", {32, 32, 14, 14}},
          {"large", {large_batch, 64, 56, 56}}};
}

}  // namespace ember::bench
