/// @file tests/emulated/test_devices.cpp @brief Per-device state of the CUDA backend on two emulated GPUs: a tensor on cuda:1 lives and is computed on GPU 1 (its allocator, stream, cuBLAS/cuDNN handles) whatever the caller's current device; the emulator faults any launch, library call or pointer that crosses devices.
#include <catch2/catch.hpp>

#include "core/allocator.h"
#include "examples/ember_train/models.h"
#include "kernels/cuda/emulator/device_work.h"
#include "kernels/cuda/emulator/runtime.h"
#include "nn/functional.h"
#include "optim/adamw.h"
#include "optim/grad_accumulator.h"
#include "tests/kernels/cuda_test_util.h"

using namespace ember;

namespace {

bool two_devices() {
  if (emu::device_count() >= 2) return true;
  WARN("skipped: needs EMBER_EMU_DEVICES=2 (ctest sets it)");
  return false;
}

int current() {
  int d = -1;
  REQUIRE(cudaGetDevice(&d) == cudaSuccess);
  return d;
}

/// Every parameter and buffer of `m` is memory of emulated device `d`.
bool all_on(const nn::Module& m, int d) {
  for (const auto& [name, t] : m.state_dict())
    if (t.numel() > 0 && emu::device_of(t.data_ptr(), t.nbytes()) != d) return false;
  return true;
}

/// Two windows of accum 2 of the CNN with batch norm on `dev`: forward (cuDNN conv, BN, pooling,
/// cuBLAS linear), cross-entropy, backward, the fused window end and AdamW.
void train_two_windows(nn::Module& m, Device dev) {
  optim::AdamW opt(m.parameters(), optim::AdamWOptions{.lr = 1e-2});
  optim::GradAccumulator acc(m, opt, {.accum_steps = 2, .clip_norm = 1.0});
  for (uint64_t step = 0; step < 4; ++step) {
    const Tensor x = test::random_input({4, 1, 28, 28}, 100 + step).to(dev);
    const Tensor y = from_vector(std::vector<int64_t>{1, 3, 5, static_cast<int64_t>(step)}, Shape{4},
                                 TensorOptions{}.set_dtype(DType::i64))
                         .to(dev);
    acc.backward(nn::functional::cross_entropy(m(x), y), 4);
  }
}

}  // namespace

TEST_CASE("cuda:1 tensors are allocated on GPU 1 and the caller's current device is kept", "[emulated][devices][cuda]") {
  if (!two_devices()) return;
  REQUIRE(cudaSetDevice(0) == cudaSuccess);
  const Tensor a = test::random_input({1000}, 1).to(Device::cuda(1));
  CHECK(emu::device_of(a.data_ptr(), a.nbytes()) == 1);
  CHECK(current() == 0);
  const Tensor b = (a * 2.0 + 1.0).to(Device::cuda(0));  // computed on GPU 1, copied to GPU 0
  CHECK(emu::device_of(b.data_ptr(), b.nbytes()) == 0);
  CHECK(test::max_ulp(b, test::random_input({1000}, 1) * 2.0 + 1.0) == 0);
  CHECK(current() == 0);
  // Each device has its own caching allocator.
  const int64_t before = allocator_stats(Device::cuda(1)).current_bytes;
  {
    const Tensor c = empty({1 << 16}, TensorOptions{}.set_device(Device::cuda(1)));
    CHECK(allocator_stats(Device::cuda(1)).current_bytes >= before + (int64_t{1} << 18));
  }
  CHECK(allocator_stats(Device::cuda(1)).current_bytes == before);
  CHECK_THROWS_WITH(empty({4}, TensorOptions{}.set_device(Device::cuda(7))), Catch::Contains("cuda:7: no such device"));
}

TEST_CASE("an operation on tensors of two GPUs is refused, naming both", "[emulated][devices][cuda]") {
  if (!two_devices()) return;
  const Tensor a = ones({3}, TensorOptions{}.set_device(Device::cuda(0)));
  const Tensor b = ones({3}, TensorOptions{}.set_device(Device::cuda(1)));
  CHECK_THROWS_WITH(a + b, Catch::Contains("cuda:0") && Catch::Contains("cuda:1"));
}

TEST_CASE("a training step on cuda:1 runs on GPU 1 whatever the current device and equals cuda:0's bitwise",
          "[emulated][devices][cuda]") {
  if (!two_devices()) return;
  train::TrainOptions o;
  o.model = train::ModelKind::CNN;
  auto m0 = train::build_model(o, nullptr), m1 = train::build_model(o, nullptr);
  m1->load_state_dict(m0->state_dict());
  const Tensor first_weight = m0->state_dict().front().second.clone();
  m0->to(Device::cuda(0));
  m1->to(Device::cuda(1));
  REQUIRE(cudaSetDevice(0) == cudaSuccess);
  train_two_windows(*m0, Device::cuda(0));
  train_two_windows(*m1, Device::cuda(1));  // every launch, library call and allocation must go to GPU 1
  REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
  CHECK(current() == 0);
  CHECK(all_on(*m0, 0));
  CHECK(all_on(*m1, 1));
  const auto s0 = m0->state_dict(), s1 = m1->state_dict();
  REQUIRE(s0.size() == s1.size());
  for (size_t i = 0; i < s0.size(); ++i) {
    INFO(s0[i].first);
    const auto v0 = s0[i].second.to_vector<double>(), v1 = s1[i].second.to_vector<double>();
    CHECK(v0 == v1);  // the same kernels and library calls on another GPU: the same bits
  }
  CHECK(s0.front().second.to_vector<double>() != first_weight.to_vector<double>());  // two steps were taken
}
