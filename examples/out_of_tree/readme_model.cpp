/// @file examples/out_of_tree/readme_model.cpp @brief The README's model and accumulation loop, built against an installed Ember (find_package): trains on fixed random data and prints the mean loss after each epoch. Argument: the device (cpu, default; cuda with a CUDA backend linked).
//
// From "README.md example begins" to "README.md example ends": README.md's C++ block, verbatim
// (tests/scripts/test_install.sh checks that they are the same text).

// README.md example begins
#include "nn/nn.h"
#include "optim/optim.h"
using namespace ember;

struct Mlp : nn::Module {
  std::shared_ptr<nn::Linear> fc1, fc2;
  Mlp() {
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(784, 256));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(256, 10));
  }
  Tensor forward(const Tensor& x) override { return fc2->forward(relu(fc1->forward(x))); }
};

void train(Mlp& model, const std::vector<std::pair<Tensor, Tensor>>& micro_batches, int epochs) {
  optim::SGD opt(model.parameters(), optim::SGDOptions{.lr = 0.1, .momentum = 0.9});
  optim::GradAccumulator acc(model, opt, {.accum_steps = 4});   // one optimizer step per 4 micro-batches
  for (int epoch = 0; epoch < epochs; ++epoch) {
    for (const auto& [x, y] : micro_batches) {
      Tensor loss = nn::functional::cross_entropy(model(x), y);  // mean over the micro-batch
      acc.backward(loss, x.size(0));   // grads accumulate the SUM; activations are freed here
    }
    acc.flush();                       // a short last window is normalized by its own sample count
  }
}
// README.md example ends

#include <cstdio>
#include <exception>

#include "ops/ops.h"

namespace {

// Mean cross-entropy over all micro-batches, without recording the graph.
double mean_loss(Mlp& model, const std::vector<std::pair<Tensor, Tensor>>& micro_batches) {
  NoGradGuard no_grad;
  double total = 0;
  for (const auto& [x, y] : micro_batches) total += nn::functional::cross_entropy(model(x), y).item();
  return total / static_cast<double>(micro_batches.size());
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Device device = argc > 1 ? Device::parse(argv[1]) : Device::cpu();
    manual_seed(3);
    Mlp model;
    model.to(device);
    // 10 micro-batches of 6 samples of random "images" with fixed labels: 3 optimizer steps an epoch
    // (windows of 4, 4 and 2 micro-batches).
    std::vector<std::pair<Tensor, Tensor>> micro_batches;
    for (int k = 0; k < 10; ++k) {
      std::vector<int64_t> y(6);
      for (int i = 0; i < 6; ++i) y[static_cast<size_t>(i)] = (k * 6 + i) % 10;
      micro_batches.emplace_back(randn({6, 784}).to(device),
                                 from_vector(y, {6}, TensorOptions{}.set_dtype(DType::i64)).to(device));
    }
    std::printf("device %s\n", device.str().c_str());
    std::printf("epoch 0 loss %.6f\n", mean_loss(model, micro_batches));
    for (int epoch = 1; epoch <= 4; ++epoch) {
      train(model, micro_batches, 1);
      std::printf("epoch %d loss %.6f\n", epoch, mean_loss(model, micro_batches));
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "readme_model: %s\n", e.what());
    return 1;
  }
}
