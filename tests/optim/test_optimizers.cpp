/// @file tests/optim/test_optimizers.cpp @brief SGD and AdamW fused kernels vs per-tensor references of PyTorch's formulas, on every device; validation; zero_grad; state_dict.
#include <catch2/catch.hpp>
#include <cmath>

#include "core/safetensors.h"
#include "kernels/optimizer.h"
#include "optim/adamw.h"
#include "optim/sgd.h"
#include "tests/harness/backends.h"

using namespace ember;

namespace {

/// Parameters of several sizes (one spans two CUDA chunks of 65536, some odd-sized).
std::vector<Tensor> make_params(Device d, uint64_t seed) {
  std::vector<Tensor> ps;
  const std::vector<Shape> shapes{{40, 130}, {37}, {3, 3, 3}, {1}, {300, 250}};  // the last spans 2 CUDA chunks
  for (size_t i = 0; i < shapes.size(); ++i)
    ps.push_back(test::random_input(shapes[i], seed + i, -1.0, 1.0, TensorOptions{}.set_device(d).set_requires_grad(true)));
  return ps;
}

/// Sets fresh random gradients (a new draw per `round`) on every parameter.
void set_grads(std::vector<Tensor>& ps, uint64_t round) {
  for (size_t i = 0; i < ps.size(); ++i)
    ps[i].set_grad(test::random_input(ps[i].shape(), 1000 * round + i, -2.0, 2.0, TensorOptions{}.set_device(ps[i].device())));
}

std::vector<Tensor> detached_copies(const std::vector<Tensor>& ps) {
  std::vector<Tensor> out;
  for (const Tensor& p : ps) out.push_back(p.detach().clone());
  return out;
}

/// torch.optim.SGD's single-tensor loop, written with core ops.
struct ReferenceSGD {
  optim::SGDOptions o;
  std::vector<Tensor> bufs;
  void step(std::vector<Tensor>& ps, const std::vector<Tensor>& grads, double scale) {
    NoGradGuard ng;
    bufs.resize(ps.size());
    for (size_t i = 0; i < ps.size(); ++i) {
      Tensor d_p = grads[i] * scale;
      if (o.weight_decay != 0) d_p = d_p + ps[i] * o.weight_decay;
      if (o.momentum != 0) {
        bufs[i] = bufs[i].defined() ? bufs[i] * o.momentum + d_p * (1 - o.dampening) : d_p.clone();
        d_p = o.nesterov ? d_p + bufs[i] * o.momentum : bufs[i];
      }
      ps[i] = ps[i] - d_p * o.lr;
    }
  }
};

/// torch.optim.AdamW's single-tensor loop (amsgrad off), written with core ops.
struct ReferenceAdamW {
  optim::AdamWOptions o;
  std::vector<Tensor> m, v;
  int64_t t = 0;
  void step(std::vector<Tensor>& ps, const std::vector<Tensor>& grads, double scale) {
    NoGradGuard ng;
    ++t;
    const auto [b1, b2] = o.betas;
    for (size_t i = 0; i < ps.size(); ++i) {
      if (m.size() <= i) {
        m.push_back(zeros_like(ps[i]));
        v.push_back(zeros_like(ps[i]));
      }
      Tensor g = grads[i] * scale;
      ps[i] = ps[i] * (1 - o.lr * o.weight_decay);
      m[i] = m[i] * b1 + g * (1 - b1);
      v[i] = v[i] * b2 + g * g * (1 - b2);
      const double bc1 = 1 - std::pow(b1, t), bc2 = 1 - std::pow(b2, t);
      Tensor denom = pow(v[i], 0.5) / std::sqrt(bc2) + o.eps;
      ps[i] = ps[i] - m[i] / denom * (o.lr / bc1);
    }
  }
};

std::vector<Tensor> grads_of(const std::vector<Tensor>& ps) {
  std::vector<Tensor> g;
  for (const Tensor& p : ps) g.push_back(p.grad());
  return g;
}

void check_close(const std::vector<Tensor>& got, const std::vector<Tensor>& want, double rtol, double atol) {
  for (size_t i = 0; i < got.size(); ++i) {
    std::string why;
    INFO("tensor " << i << ": " << why);
    const bool ok = test::allclose(got[i], want[i], rtol, atol, &why);
    INFO(why);
    CHECK(ok);
  }
}

}  // namespace

TEST_CASE("SGD fused step matches PyTorch's per-tensor rule", "[optim][cuda]") {
  const std::vector<optim::SGDOptions> configs{
      {0.1, 0.0, 0.0, false, 0.0},    // plain
      {0.05, 0.9, 0.1, false, 1e-2},  // momentum + dampening + weight decay
      {0.05, 0.9, 0.0, true, 1e-3},   // nesterov
  };
  for (Device d : test::devices()) {
    for (const auto& cfg : configs) {
      for (double scale : {1.0, 0.25}) {
        INFO(d.str() << " momentum " << cfg.momentum << " nesterov " << cfg.nesterov << " scale " << scale);
        std::vector<Tensor> ps = make_params(d, 7);
        std::vector<Tensor> ref = detached_copies(ps);
        optim::SGD opt(ps, cfg);
        ReferenceSGD rs{cfg, {}};
        for (uint64_t round = 0; round < 3; ++round) {
          set_grads(ps, round);
          opt.step_scaled(scale);
          rs.step(ref, grads_of(ps), scale);
        }
        // Same operations in the same order per element; float32 rounding may differ only where the
        // compiler or GPU fuses a multiply-add: a few ulps.
        check_close(ps, ref, 1e-6, 1e-6);
        CHECK(opt.steps() == 3);
      }
    }
  }
}

TEST_CASE("AdamW fused step matches PyTorch's per-tensor rule", "[optim][cuda]") {
  const std::vector<optim::AdamWOptions> configs{{1e-2, {0.9, 0.999}, 1e-8, 1e-2}, {3e-3, {0.8, 0.99}, 1e-6, 0.0}};
  for (Device d : test::devices()) {
    for (const auto& cfg : configs) {
      for (double scale : {1.0, 1.0 / 6}) {
        INFO(d.str() << " lr " << cfg.lr << " scale " << scale);
        std::vector<Tensor> ps = make_params(d, 11);
        std::vector<Tensor> ref = detached_copies(ps);
        optim::AdamW opt(ps, cfg);
        ReferenceAdamW ra{cfg, {}, {}, 0};
        for (uint64_t round = 0; round < 4; ++round) {
          set_grads(ps, round + 10);
          opt.step_scaled(scale);
          ra.step(ref, grads_of(ps), scale);
        }
        // The reference takes sqrt through pow(v, 0.5) and divides in a different order: each update
        // (size ~lr) agrees to a few float32 ulps relative, the weights (~1) to ~1e-6.
        check_close(ps, ref, 1e-6, 2e-6);
      }
    }
  }
}

TEST_CASE("fused optimizer kernels report the scaled gradients' norm and non-finite values", "[optim][cuda]") {
  for (Device d : test::devices()) {
    INFO(d.str());
    std::vector<Tensor> ps = make_params(d, 3);
    set_grads(ps, 5);
    double want = 0;
    for (const Tensor& p : ps)
      for (float g : p.grad().to_vector<float>()) want += (0.5 * g) * (0.5 * g);
    optim::SGD sgd(ps, {0.0, 0.9});
    ember::ScaleResult r = sgd.step_scaled(0.5);
    CHECK(r.sum_squares == Approx(want).epsilon(1e-6));  // float32 squares summed in double
    CHECK_FALSE(r.non_finite);
    optim::AdamW adamw(ps, {});
    r = adamw.step_scaled(0.5);
    CHECK(r.sum_squares == Approx(want).epsilon(1e-6));
    CHECK_FALSE(r.non_finite);
    {
      NoGradGuard ng;
      Tensor g = ps[1].grad();
      g.copy_(from_vector(std::vector<float>(37, NAN), {37}, TensorOptions{}.set_device(d)));
    }
    CHECK(sgd.step_scaled(1.0).non_finite);
    CHECK(adamw.step_scaled(1.0).non_finite);
  }
}

TEST_CASE("a step of several kernel calls reports the norm and flag of all of them", "[optim][cuda]") {
  // Two parameter groups: two fused calls per step, each adding its partial sums to the step status.
  for (Device d : test::devices()) {
    INFO(d.str());
    std::vector<Tensor> ps = make_params(d, 3);
    set_grads(ps, 6);
    double want = 0;
    for (const Tensor& p : ps)
      for (float g : p.grad().to_vector<float>()) want += (0.5 * g) * (0.5 * g);
    optim::SGD sgd({optim::ParamGroup{{ps[0]}, 0.0, 0.0}, optim::ParamGroup{{ps[1], ps[2], ps[3], ps[4]}, 0.0, 0.0}}, {0.0, 0.9});
    const ember::ScaleResult r = sgd.step_scaled(0.5);
    CHECK(r.sum_squares == Approx(want).epsilon(1e-6));
    CHECK_FALSE(r.non_finite);
    {
      NoGradGuard ng;
      ps[0].grad().view(Shape{ps[0].grad().numel()}).slice(0, 0, 1).fill_(NAN);  // first call only
    }
    CHECK(sgd.step_scaled(1.0).non_finite);
  }
}

TEST_CASE("fused optimizer kernels handle more tensors than one CUDA launch carries", "[optim][cuda]") {
  for (Device d : test::devices()) {
    INFO(d.str());
    std::vector<Tensor> ps;
    for (int i = 0; i < 75; ++i)
      ps.push_back(test::random_input({i % 7 + 1, 5}, 300 + i, -1, 1, TensorOptions{}.set_device(d).set_requires_grad(true)));
    std::vector<Tensor> ref = detached_copies(ps);
    set_grads(ps, 9);
    optim::AdamW opt(ps, {0.01});
    ReferenceAdamW ra{{0.01}, {}, {}, 0};
    opt.step();
    ra.step(ref, grads_of(ps), 1.0);
    check_close(ps, ref, 1e-6, 2e-6);
  }
}

TEST_CASE("fused optimizer kernels agree between CPU and CUDA", "[optim][cuda]") {
  if (!test::cuda_or_warn()) return;
  std::vector<Tensor> cpu = make_params(Device::cpu(), 21), gpu = make_params(Device::cuda(), 21);
  optim::AdamW a_cpu(cpu, {0.01}), a_gpu(gpu, {0.01});
  for (uint64_t round = 0; round < 3; ++round) {
    set_grads(cpu, round);
    set_grads(gpu, round);
    a_cpu.step_scaled(0.5);
    a_gpu.step_scaled(0.5);
  }
  // Same formula in float32; the GPU may contract multiply-adds: a few ulps.
  check_close(gpu, cpu, 1e-6, 1e-6);
}

TEST_CASE("optimizer options and parameters are validated", "[optim]") {
  auto p = test::random_input({3}, 1, -1, 1, TensorOptions{}.set_requires_grad(true));
  CHECK_THROWS_WITH(optim::SGD({p}, {-0.1}), Catch::Contains("invalid learning rate -0.1"));
  CHECK_THROWS_WITH(optim::SGD({p}, {0.1, -0.5}), Catch::Contains("invalid momentum -0.5"));
  CHECK_THROWS_WITH(optim::SGD({p}, {0.1, 0.0, 0.0, true}), Catch::Contains("nesterov momentum requires momentum > 0"));
  CHECK_THROWS_WITH(optim::SGD({p}, {0.1, 0.9, 0.5, true}), Catch::Contains("dampening 0.5"));
  CHECK_THROWS_WITH(optim::SGD({p}, {0.1, 0.0, 0.0, false, -1.0}), Catch::Contains("invalid weight_decay -1"));
  CHECK_THROWS_WITH(optim::AdamW({p}, {0.1, {1.0, 0.999}}), Catch::Contains("invalid beta1 1"));
  CHECK_THROWS_WITH(optim::AdamW({p}, {0.1, {0.9, -0.1}}), Catch::Contains("invalid beta2 -0.1"));
  CHECK_THROWS_WITH(optim::AdamW({p}, {0.1, {0.9, 0.999}, -1.0}), Catch::Contains("invalid eps -1"));
  CHECK_THROWS_WITH(optim::AdamW(std::vector<Tensor>{}, {}), Catch::Contains("group 0 is empty"));
  CHECK_THROWS_WITH(optim::AdamW({p, p}, {}), Catch::Contains("appears more than once"));
  CHECK_THROWS_WITH(optim::AdamW({zeros({2})}, {}), Catch::Contains("must be a contiguous floating leaf tensor that requires grad"));
  optim::SGD ok({p}, {0.1});
  CHECK_THROWS_WITH(ok.set_lr(-1), Catch::Contains("invalid learning rate -1"));
  if (test::has_cuda()) {
    auto q = test::random_input({3}, 2, -1, 1, TensorOptions{}.set_device(Device::cuda()).set_requires_grad(true));
    CHECK_THROWS_WITH(optim::SGD({p, q}, {0.1}), Catch::Contains("all parameters must be on one device"));
  }
  // The kernel entry points check their lists.
  std::vector<Tensor> ps{p.detach()}, gs{zeros({4})}, bufs;
  CHECK_THROWS_WITH(kernels::sgd_step(ps, gs, bufs, {0.1}), Catch::Contains("grads[0] f32[4] on cpu does not match"));
  std::vector<Tensor> gs_ok{zeros({3})};
  CHECK_THROWS_WITH(kernels::sgd_step(ps, gs_ok, bufs, {0.1, 0.9}), Catch::Contains("1 parameters but 0 momentum buffers"));
  CHECK_THROWS_WITH(kernels::adamw_step(ps, gs_ok, bufs, bufs, {}, 0), Catch::Contains("step must be >= 1"));
}

TEST_CASE("zero_grad zeros gradients in place and keeps their buffers", "[optim]") {
  std::vector<Tensor> ps = make_params(Device::cpu(), 5);
  set_grads(ps, 1);
  Tensor extra = test::random_input({2}, 99, -1, 1, TensorOptions{}.set_requires_grad(true));  // never gets a grad
  ps.push_back(extra);
  optim::SGD opt(ps, {0.1});
  std::vector<void*> ptrs;
  for (size_t i = 0; i + 1 < ps.size(); ++i) ptrs.push_back(ps[i].grad().data_ptr());
  opt.zero_grad();
  for (size_t i = 0; i + 1 < ps.size(); ++i) {
    CHECK(ps[i].grad().data_ptr() == ptrs[i]);
    for (float v : ps[i].grad().to_vector<float>()) REQUIRE(v == 0.0f);
  }
  CHECK_FALSE(extra.grad().defined());
}

TEST_CASE("parameters without a gradient are skipped and keep no state", "[optim]") {
  auto a = test::random_input({4}, 1, -1, 1, TensorOptions{}.set_requires_grad(true));
  auto b = test::random_input({4}, 2, -1, 1, TensorOptions{}.set_requires_grad(true));
  const auto b_before = b.to_vector<float>();
  a.set_grad(ones({4}));
  optim::AdamW opt({a, b}, {0.1});
  opt.step();
  CHECK(b.to_vector<float>() == b_before);
  b.set_grad(ones({4}));
  opt.step();  // a's second step, b's first: different bias corrections
  const NamedTensors sd = opt.state_dict();
  auto find = [&](const std::string& k) {
    for (const auto& [n, t] : sd)
      if (n == k) return t;
    return Tensor();
  };
  REQUIRE(find("0.step").defined());
  CHECK(find("0.step").item() == 2);
  CHECK(find("1.step").item() == 1);
  CHECK(find("step").item() == 2);
  // b's first AdamW step with a constant gradient moves it by lr (times 1 - lr*wd on the weight first).
  const auto b_after = b.to_vector<float>();
  for (size_t i = 0; i < 4; ++i) CHECK(b_after[i] == Approx(b_before[i] * (1 - 0.1 * 0.01) - 0.1).epsilon(1e-5));
}

TEST_CASE("parameter groups carry their own learning rate and weight decay", "[optim]") {
  auto a = test::random_input({5}, 1, -1, 1, TensorOptions{}.set_requires_grad(true));
  auto b = test::random_input({5}, 2, -1, 1, TensorOptions{}.set_requires_grad(true));
  const auto a0 = a.to_vector<float>(), b0 = b.to_vector<float>();
  a.set_grad(ones({5}));
  b.set_grad(ones({5}));
  optim::SGD opt(std::vector<optim::ParamGroup>{{{a}, 0.1, 0.0}, {{b}, 0.01, 0.5}}, {});
  CHECK(opt.lr() == 0.1);
  opt.step();
  const auto a1 = a.to_vector<float>(), b1 = b.to_vector<float>();
  for (size_t i = 0; i < 5; ++i) {
    CHECK(a1[i] == Approx(a0[i] - 0.1f).margin(1e-6));
    CHECK(b1[i] == Approx(b0[i] - 0.01f * (1.0f + 0.5f * b0[i])).margin(1e-6));
  }
  opt.set_lr(0.3);
  CHECK(opt.param_groups()[1].lr == 0.3);
  CHECK(opt.param_groups()[1].initial_lr == 0.01);
}

TEST_CASE("optimizer state_dict round-trips through safetensors and resumes identically", "[optim]") {
  for (int kind = 0; kind < 2; ++kind) {
    INFO((kind == 0 ? "SGD" : "AdamW"));
    auto make = [&](std::vector<Tensor> ps) -> std::unique_ptr<optim::Optimizer> {
      if (kind == 0) return std::make_unique<optim::SGD>(std::move(ps), optim::SGDOptions{0.05, 0.9, 0.0, true, 1e-3});
      return std::make_unique<optim::AdamW>(std::move(ps), optim::AdamWOptions{0.01});
    };
    std::vector<Tensor> ps = make_params(Device::cpu(), 40);
    auto opt = make(ps);
    for (uint64_t r = 0; r < 2; ++r) {
      set_grads(ps, r);
      opt->step();
    }
    NamedTensors named;
    for (size_t i = 0; i < ps.size(); ++i) named.emplace_back("layer" + std::to_string(i) + ".weight", ps[i]);
    // Save by index through the safetensors format, by name in memory.
    const SafetensorsContent file = parse_safetensors(serialize_safetensors(opt->state_dict()), "optim state");
    const NamedTensors by_name = opt->state_dict(named);
    CHECK(by_name[2].first.rfind("layer0.weight.", 0) == 0);

    std::vector<Tensor> ps2 = detached_copies(ps), ps3 = detached_copies(ps);
    for (Tensor& t : ps2) t.set_requires_grad(true);
    for (Tensor& t : ps3) t.set_requires_grad(true);
    auto opt2 = make(ps2), opt3 = make(ps3);
    opt2->load_state_dict(file.tensors);
    NamedTensors named3;
    for (size_t i = 0; i < ps3.size(); ++i) named3.emplace_back(named[i].first, ps3[i]);
    opt3->load_state_dict(by_name, named3);
    CHECK(opt2->steps() == 2);
    set_grads(ps, 7);
    set_grads(ps2, 7);
    set_grads(ps3, 7);
    opt->step();
    opt2->step();
    opt3->step();
    for (size_t i = 0; i < ps.size(); ++i) {
      CHECK(ps2[i].to_vector<float>() == ps[i].to_vector<float>());
      CHECK(ps3[i].to_vector<float>() == ps[i].to_vector<float>());
    }
    // Bad entries are named.
    NamedTensors bad = opt->state_dict();
    bad.emplace_back("9.exp_avg", zeros({1}));
    CHECK_THROWS_WITH(opt2->load_state_dict(bad), Catch::Contains("'9.exp_avg' names no parameter"));
    NamedTensors wrong_slot{{"0.velocity", zeros({40, 130})}};
    CHECK_THROWS_WITH(opt2->load_state_dict(wrong_slot), Catch::Contains("unknown slot 'velocity'"));
    const std::string slot = kind == 0 ? "0.momentum_buffer" : "0.exp_avg";
    NamedTensors wrong_shape{{slot, zeros({3, 3})}};
    CHECK_THROWS_WITH(opt2->load_state_dict(wrong_shape), Catch::Contains("f32[3, 3] on cpu but the parameter is f32[40, 130]"));
    CHECK_THROWS_WITH(opt->state_dict(NamedTensors{}), Catch::Contains("has no name"));
  }
}
