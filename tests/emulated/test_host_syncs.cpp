/// @file tests/emulated/test_host_syncs.cpp @brief The CUDA training loop blocks the host at most once per optimizer step and never inside a micro-batch: counted by the emulated CUDA API (every call that waits for the device), for the MLP and the CNN with batch norm, with and without clipping.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

#include "examples/ember_train/models.h"
#include "kernels/cuda/emulator/runtime.h"
#include "kernels/runtime_stats.h"
#include "nn/functional.h"
#include "optim/grad_accumulator.h"
#include "optim/sgd.h"
#include "tests/kernels/cuda_test_util.h"

using namespace ember;

namespace {

struct SyncCounts {
  std::uint64_t micro_max = 0;   ///< most host syncs in a micro-batch that did not end a window
  std::uint64_t window_max = 0;  ///< most in a micro-batch that ended one (its forward, backward and window end)
  std::string where;             ///< the API calls that blocked, for the failure message
};

/// Trains `windows` windows of `accum` micro-batches of 4 samples on emulated cuda:0 as ember-train's
/// loop does, counting host synchronizations per micro-batch after a first, uncounted window (first-use
/// work: cuDNN's algorithm search, allocator growth). The batches are on the device before counting:
/// data loading is not part of the loop measured here. `item_in_loop` reads the loss on the host in
/// every micro-batch, the mistake the counters must catch.
SyncCounts count_syncs(train::ModelKind model, double clip_norm, bool item_in_loop) {
  train::TrainOptions o;
  o.model = model;
  o.norm = train::NormKind::Batch;
  manual_seed(7);
  std::shared_ptr<nn::Module> net = train::build_model(o, nullptr);
  net->to(test::kCuda);
  optim::SGD opt(net->parameters(), optim::SGDOptions{.lr = 0.01, .momentum = 0.9});
  constexpr int64_t kAccum = 3, kWindows = 3, kBatch = 4;
  optim::GradAccumulator acc(*net, opt, {.accum_steps = kAccum, .clip_norm = clip_norm});
  std::vector<Tensor> xs, ys;
  for (int64_t i = 0; i < (kWindows + 1) * kAccum; ++i) {
    xs.push_back(test::random_input({kBatch, 1, 28, 28}, 100 + static_cast<uint64_t>(i)).to(test::kCuda));
    ys.push_back(from_vector(std::vector<int64_t>{i % 10, (i + 3) % 10, (i + 5) % 10, (i + 9) % 10}, {kBatch},
                             TensorOptions{}.set_dtype(DType::i64))
                     .to(test::kCuda));
  }
  SyncCounts c;
  double seen = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    emu::reset_counters();
    const ember::RuntimeStats ember_before = kernels::runtime_stats(DeviceType::CUDA);
    Tensor loss = nn::functional::cross_entropy(net->forward(xs[i]), ys[i]);
    if (item_in_loop) seen += loss.item();
    const bool stepped = acc.backward(loss, kBatch);
    const emu::Counters k = emu::counters();
    // Ember's own count (what --summary reports on a GPU) sees every blocking call the CUDA API saw.
    CHECK(kernels::runtime_stats(DeviceType::CUDA).host_syncs - ember_before.host_syncs ==
          static_cast<int64_t>(k.host_syncs));
    if (static_cast<int64_t>(i) < kAccum) continue;  // the first window
    (stepped ? c.window_max : c.micro_max) = std::max(stepped ? c.window_max : c.micro_max, k.host_syncs);
    for (const auto& [call, n] : k.syncs_by_call) c.where += call + " x" + std::to_string(n) + " ";
  }
  (void)seen;
  CHECK(acc.optimizer_steps() == kWindows + 1);
  CHECK(std::isfinite(acc.last_grad_norm()));
  return c;
}

}  // namespace

TEST_CASE("the CUDA training loop makes no host sync inside a micro-batch and at most one per optimizer step",
          "[emulated][cuda][train_loop]") {
  for (const train::ModelKind model : {train::ModelKind::MLP, train::ModelKind::CNN}) {
    for (const double clip : {0.0, 0.5}) {
      const SyncCounts c = count_syncs(model, clip, false);
      INFO((model == train::ModelKind::MLP ? "mlp" : "cnn") << ", clip_norm " << clip << "; blocking calls: " << c.where);
      CHECK(c.micro_max == 0);
      CHECK(c.window_max <= 1);
    }
  }
}

TEST_CASE("the host-sync count catches a loss.item() inside the micro-batch loop", "[emulated][cuda][train_loop]") {
  const SyncCounts c = count_syncs(train::ModelKind::MLP, 0.0, true);
  CHECK(c.micro_max >= 1);  // one blocking copy per micro-batch: the assertion above would fail
}

TEST_CASE("a target outside [0, C) found on the GPU is raised at the window's host sync with its micro-step",
          "[emulated][cuda][train_loop]") {
  train::TrainOptions o;
  o.model = train::ModelKind::MLP;
  o.norm = train::NormKind::None;
  manual_seed(3);
  std::shared_ptr<nn::Module> net = train::build_model(o, nullptr);
  net->to(test::kCuda);
  optim::SGD opt(net->parameters(), optim::SGDOptions{.lr = 0.01});
  optim::GradAccumulator acc(*net, opt, {.accum_steps = 3});
  const TensorOptions i64 = TensorOptions{}.set_dtype(DType::i64);
  auto micro = [&](std::vector<int64_t> targets) {
    const Tensor x = test::random_input({2, 1, 28, 28}, 5).to(test::kCuda);
    const Tensor y = from_vector(targets, {2}, i64).to(test::kCuda);
    emu::reset_counters();
    Tensor loss = nn::functional::cross_entropy(net->forward(x), y);
    return acc.backward(loss, 2);
  };
  CHECK_FALSE(micro({1, 2}));
  CHECK_FALSE(micro({3, 10}));  // micro-step 2: target 10 with C = 10; the GPU does not stop the host here
  CHECK(emu::counters().host_syncs == 0);
  CHECK_THROWS_WITH(micro({4, 5}), Catch::Contains("cross_entropy: target 10 at position 1 is out of range for C = 10") &&
                                       Catch::Contains("in micro-step 2"));
}

TEST_CASE("the window's loss sum kept on the device is the sum of loss * count over its micro-batches",
          "[emulated][cuda][train_loop]") {
  for (const Device dev : test::devices()) {
    INFO(dev.str());
    train::TrainOptions o;
    o.model = train::ModelKind::MLP;
    o.norm = train::NormKind::None;
    manual_seed(5);
    std::shared_ptr<nn::Module> net = train::build_model(o, nullptr);
    net->to(dev);
    optim::SGD opt(net->parameters(), optim::SGDOptions{.lr = 0.01});
    optim::GradAccumulator acc(*net, opt, {.accum_steps = 3});
    double want = 0;  // the host's sum of each micro-batch's mean loss times its size, in double
    for (int64_t n : {2, 3, 5}) {
      std::vector<int64_t> targets;
      for (int64_t i = 0; i < n; ++i) targets.push_back((3 * i + n) % 10);
      const Tensor x = test::random_input({n, 1, 28, 28}, 40 + static_cast<uint64_t>(n)).to(dev);
      const Tensor y = from_vector(targets, {n}, TensorOptions{}.set_dtype(DType::i64)).to(dev);
      Tensor loss = nn::functional::cross_entropy(net->forward(x), y);
      want += loss.item() * static_cast<double>(n);
      acc.backward(loss, n);
    }
    CHECK(acc.optimizer_steps() == 1);
    CHECK(acc.last_loss_sum() == want);  // the same double products and sums, in the same order
  }
}
