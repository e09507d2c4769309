/// @file tests/kernels/test_cuda_optimizer.cpp @brief The fused CUDA optimizer kernels (SGD, AdamW) against the CPU backend, also with chunk lists split into launches of 2 blocks (tensors continued across launches).
//
// Tolerances: the same f32 formulas on both backends; nvcc may contract multiply-adds: relative and
// absolute 1e-6 on parameters and state. The gradient norm sums f32 squares in double in different
// orders: relative 1e-9.
#include <catch2/catch.hpp>

#include <cstring>
#include <limits>

#include "kernels/optimizer.h"
#include "tests/kernels/cuda_test_util.h"

using namespace ember;

namespace {

/// Sizes of 1 + 2 + 3 + 1 chunks of 65536 (a parameter list that takes 4 launches under a cap of 2).
const std::vector<int64_t> kSizes{3, 65536 + 7, 2 * 65536 + 5, 100};

/// One backend's copy of a list: `depth` state tensors per parameter besides the parameter itself.
struct List {
  std::vector<Tensor> params, grads;
  std::vector<std::vector<Tensor>> state;  // [k][i]: state tensor k of parameter i
};

List make_list(Device d, size_t depth, uint64_t seed) {
  List l;
  l.state.resize(depth);
  for (size_t i = 0; i < kSizes.size(); ++i) {
    l.params.push_back(test::random_input({kSizes[i]}, seed + i, -1.0, 1.0).to(d));
    l.grads.push_back(test::random_input({kSizes[i]}, seed + 100 + i, -2.0, 2.0).to(d));
    for (size_t k = 0; k < depth; ++k)
      l.state[k].push_back(test::random_input({kSizes[i]}, seed + 200 + 10 * k + i, 0.0, 1.0).to(d));
  }
  return l;
}

void check_close(const std::vector<Tensor>& got, const std::vector<Tensor>& want) {
  for (size_t i = 0; i < got.size(); ++i) {
    std::string why;
    const bool ok = test::allclose(got[i], want[i], 1e-6, 1e-6, &why);
    INFO("tensor " << i << ": " << why);
    CHECK(ok);
  }
}

std::vector<Tensor> clones(const std::vector<Tensor>& ts) {
  std::vector<Tensor> c;
  for (const Tensor& t : ts) c.push_back(t.clone());
  return c;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  const std::vector<float> x = a.to_vector<float>(), y = b.to_vector<float>();
  return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
}

/// Runs step(gate) with a gate that reports into a fresh status, and reads the status back.
template <class Step>
ember::ScaleResult reported(Device d, Step&& step) {
  Tensor status = kernels::make_step_status(d);
  step(ember::StepGate{.status = status});
  return kernels::read_scale_result(status);
}

}  // namespace

TEST_CASE("cuda fused SGD and AdamW match the CPU, also split into launches of 2 blocks", "[cuda][optim]") {
  if (!test::cuda_or_warn()) return;
  const kernels::SgdStepOptions sgd{.lr = 0.1, .momentum = 0.9, .dampening = 0.1, .weight_decay = 0.01,
                                    .nesterov = true, .init_momentum = false};
  const kernels::AdamWStepOptions adamw{.lr = 0.01};
  for (unsigned cap : test::kGridCaps) {
    const test::GridCap grid(cap);
    INFO(grid.str());
    {
      List cpu = make_list(Device::cpu(), 1, 10), gpu = make_list(test::kCuda, 1, 10);
      const ember::ScaleResult rc = reported(Device::cpu(), [&](const ember::StepGate& g) {
        kernels::sgd_step(cpu.params, cpu.grads, cpu.state[0], sgd, 0.5, g);
      });
      const ember::ScaleResult rg = reported(test::kCuda, [&](const ember::StepGate& g) {
        kernels::sgd_step(gpu.params, gpu.grads, gpu.state[0], sgd, 0.5, g);
      });
      CHECK(rg.sum_squares == Approx(rc.sum_squares).epsilon(1e-9));
      CHECK_FALSE(rg.non_finite);
      check_close(gpu.params, cpu.params);
      check_close(gpu.state[0], cpu.state[0]);
    }
    {
      List cpu = make_list(Device::cpu(), 2, 20), gpu = make_list(test::kCuda, 2, 20);
      const auto rc = reported(Device::cpu(), [&](const ember::StepGate& g) {
        kernels::adamw_step(cpu.params, cpu.grads, cpu.state[0], cpu.state[1], adamw, 3, 0.25, g);
      });
      const auto rg = reported(test::kCuda, [&](const ember::StepGate& g) {
        kernels::adamw_step(gpu.params, gpu.grads, gpu.state[0], gpu.state[1], adamw, 3, 0.25, g);
      });
      CHECK(rg.sum_squares == Approx(rc.sum_squares).epsilon(1e-9));
      CHECK_FALSE(rg.non_finite);
      check_close(gpu.params, cpu.params);
      check_close(gpu.state[0], cpu.state[0]);
      check_close(gpu.state[1], cpu.state[1]);
    }
  }
}

TEST_CASE("cuda fused optimizers flag a non-finite gradient in any chunk of any launch", "[cuda][optim]") {
  if (!test::cuda_or_warn()) return;
  const kernels::SgdStepOptions sgd{.lr = 0.1};
  const kernels::AdamWStepOptions adamw{};
  for (unsigned cap : test::kGridCaps) {
    const test::GridCap grid(cap);
    // Thread 200 of the 3-chunk tensor's 2nd chunk (under a cap of 2: slot 0 of the 3rd launch, the
    // tensor continued there), thread 99 of the last entry's block.
    const std::vector<std::pair<size_t, int64_t>> places{{2, 65536 + 200}, {3, 99}};
    for (const auto& [tensor, at] : places) {
      INFO(grid.str() << ", NaN at element " << at << " of tensor " << tensor);
      List l = make_list(test::kCuda, 2, 30);
      std::vector<float> g = l.grads[tensor].to_vector<float>();
      REQUIRE(at < static_cast<int64_t>(g.size()));
      g[static_cast<size_t>(at)] = std::numeric_limits<float>::quiet_NaN();
      l.grads[tensor] = from_vector(g, {kSizes[tensor]}, test::kOnCuda);
      std::vector<Tensor> no_bufs;
      CHECK(reported(test::kCuda, [&](const ember::StepGate& gate) {
              kernels::sgd_step(l.params, l.grads, no_bufs, sgd, 1.0, gate);
            }).non_finite);
      CHECK(reported(test::kCuda, [&](const ember::StepGate& gate) {
              kernels::adamw_step(l.params, l.grads, l.state[0], l.state[1], adamw, 1, 1.0, gate);
            }).non_finite);
    }
  }
}

TEST_CASE("a reading gate skips a non-finite window on the device and clips as clip_grad_norm_ does",
          "[cuda][optim]") {
  const kernels::SgdStepOptions sgd{.lr = 0.1, .momentum = 0.9};
  const kernels::AdamWStepOptions adamw{.lr = 0.01};
  // A status as scale_many leaves it: sum of squares 16 (norm 4), flag as given.
  auto status_on = [](Device d, double non_finite) {
    Tensor st = from_vector(std::vector<double>{0.0, 16.0, non_finite, 0.0}, {ember::kStatusSize},
                            TensorOptions{}.set_dtype(DType::f64));
    return st.to(d);
  };
  for (Device d : test::devices()) {
    INFO(d.str());
    // Skip: nothing is written, parameters and state stay bitwise as they were.
    List l = make_list(d, 2, 40);
    const std::vector<Tensor> p0 = clones(l.params), m0 = clones(l.state[0]);
    const ember::StepGate skip{.status = status_on(d, 1.0), .read = true, .skip_non_finite = true};
    kernels::sgd_step(l.params, l.grads, l.state[0], sgd, 1.0, skip);
    kernels::adamw_step(l.params, l.grads, l.state[0], l.state[1], adamw, 1, 1.0, skip);
    for (size_t i = 0; i < p0.size(); ++i) {
      CHECK(same_bits(l.params[i], p0[i]));
      CHECK(same_bits(l.state[0][i], m0[i]));
    }
    // Clip to 2: each gradient times 2 / (4 + 1e-6), rounded as a separate product, then the plain update.
    List gated = make_list(d, 2, 50), plain = make_list(Device::cpu(), 2, 50);
    const double coef = 2.0 / (4.0 + 1e-6);
    std::vector<Tensor> clipped;
    for (const Tensor& g : plain.grads) {
      std::vector<float> v = g.to_vector<float>();
      for (float& x : v) x = x * static_cast<float>(coef);
      clipped.push_back(from_vector(v, g.shape()));
    }
    const ember::StepGate clip{.status = status_on(d, 0.0), .read = true, .clip_norm = 2.0, .skip_non_finite = true};
    kernels::sgd_step(gated.params, gated.grads, gated.state[0], sgd, 1.0, clip);
    kernels::sgd_step(plain.params, clipped, plain.state[0], sgd, 1.0);
    check_close(gated.params, plain.params);
    check_close(gated.state[0], plain.state[0]);
    // Below the threshold the gate changes nothing.
    List under = make_list(d, 2, 60), ref = make_list(Device::cpu(), 2, 60);
    const ember::StepGate loose{.status = status_on(d, 0.0), .read = true, .clip_norm = 8.0};
    kernels::adamw_step(under.params, under.grads, under.state[0], under.state[1], adamw, 2, 1.0, loose);
    kernels::adamw_step(ref.params, ref.grads, ref.state[0], ref.state[1], adamw, 2, 1.0);
    check_close(under.params, ref.params);
  }
}

TEST_CASE("cuda fused optimizers take the scalar path for tensors not 16-byte aligned", "[cuda][optim]") {
  // Views starting 1 element into their storage: no float4 access is legal; the result is the CPU's.
  const kernels::SgdStepOptions sgd{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01};
  auto misaligned = [](Device d, uint64_t seed) {
    List l = make_list(d, 1, seed);
    for (Tensor* t : {&l.params[2], &l.grads[2], &l.state[0][2]}) {
      Tensor big = empty({t->numel() + 1}, TensorOptions{}.set_device(d));
      Tensor view = big.slice(0, 1, t->numel() + 1);
      view.copy_(*t);
      *t = view;
    }
    return l;
  };
  List cpu = misaligned(Device::cpu(), 70), gpu = misaligned(test::kCuda, 70);
  REQUIRE(reinterpret_cast<uintptr_t>(gpu.params[2].data_ptr()) % 16 != 0);
  kernels::sgd_step(cpu.params, cpu.grads, cpu.state[0], sgd, 0.5);
  kernels::sgd_step(gpu.params, gpu.grads, gpu.state[0], sgd, 0.5);
  check_close(gpu.params, cpu.params);
  check_close(gpu.state[0], cpu.state[0]);
}
