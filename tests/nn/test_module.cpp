/// @file tests/nn/test_module.cpp @brief nn::Module: dotted names in registration order, state_dict round trip and strict loading, train/eval, zero_grad, to(Device); the GELU/SiLU/Softplus layers.
#include <catch2/catch.hpp>

#include <cmath>
#include <numbers>

#include "nn/nn.h"
#include "tests/harness/backends.h"

using namespace ember;

namespace {
struct Block : nn::Module {
  std::shared_ptr<nn::Linear> fc;
  Block() {
    fc = register_module("fc", std::make_shared<nn::Linear>(4, 3));
    register_buffer("counter", zeros({1}));
  }
  Tensor forward(const Tensor& x) override { return fc->forward(x); }
};

struct Net : nn::Module {
  std::shared_ptr<nn::Linear> fc1;
  std::shared_ptr<nn::Sequential> features;
  std::shared_ptr<Block> head;
  Net() {
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(5, 4));
    features = register_module("features", std::make_shared<nn::Sequential>(
                                               std::initializer_list<std::shared_ptr<nn::Module>>{
                                                   std::make_shared<nn::ReLU>(), std::make_shared<nn::Linear>(4, 4)}));
    head = register_module("head", std::make_shared<Block>());
  }
  Tensor forward(const Tensor& x) override { return head->forward(features->forward(fc1->forward(x))); }
};

std::vector<std::string> names(const NamedTensors& nt) {
  std::vector<std::string> out;
  for (const auto& [n, _] : nt) out.push_back(n);
  return out;
}
}  // namespace

TEST_CASE("named_parameters uses PyTorch's dotted names in registration order", "[nn]") {
  Net net;
  CHECK(names(net.named_parameters()) == std::vector<std::string>{"fc1.weight", "fc1.bias", "features.1.weight",
                                                                  "features.1.bias", "head.fc.weight", "head.fc.bias"});
  CHECK(names(net.named_buffers()) == std::vector<std::string>{"head.counter"});
  CHECK(net.parameters().size() == 6);
  for (const auto& p : net.parameters()) CHECK(p.requires_grad());
  CHECK(names(net.state_dict()).size() == 7);
}

TEST_CASE("register_* rejects duplicate, dotted and empty names", "[nn]") {
  nn::Module m;
  m.register_parameter("w", zeros({2}));
  CHECK_THROWS_WITH(m.register_parameter("w", zeros({2})), Catch::Contains("'w' is already registered"));
  CHECK_THROWS_WITH(m.register_buffer("a.b", zeros({2})), Catch::Contains("must not contain '.'"));
  CHECK_THROWS_WITH(m.register_module("", std::make_shared<nn::ReLU>()), Catch::Contains("empty name"));
  CHECK_THROWS_WITH(m.forward(zeros({1})), Catch::Contains("not implemented"));
}

TEST_CASE("state_dict round trip and strict load errors name the keys", "[nn]") {
  manual_seed(1);
  Net a;
  manual_seed(2);
  Net b;
  REQUIRE_FALSE(test::allclose(a.fc1->weight, b.fc1->weight, 0, 0));
  b.load_state_dict(a.state_dict());
  for (size_t i = 0; i < a.parameters().size(); ++i)
    CHECK(a.parameters()[i].to_vector<float>() == b.parameters()[i].to_vector<float>());
  Tensor x = randn({2, 5});
  CHECK(a(x).to_vector<float>() == b(x).to_vector<float>());

  auto sd = a.state_dict();
  sd.erase(sd.begin());                            // drop fc1.weight
  sd.emplace_back("extra.weight", zeros({1}));     // unexpected
  sd[0].second = zeros({7});                        // fc1.bias mis-shaped
  CHECK_THROWS_WITH(b.load_state_dict(sd), Catch::Contains("missing keys: fc1.weight") &&
                                               Catch::Contains("unexpected keys: extra.weight") &&
                                               Catch::Contains("fc1.bias (expected [4], got [7])"));
}

TEST_CASE("train/eval propagate; zero_grad zeros in place", "[nn]") {
  Net net;
  net.eval();
  CHECK_FALSE(net.head->fc->is_training());
  net.train();
  CHECK(net.features->is_training());
  Tensor loss = sum(net(randn({3, 5})));
  loss.backward();
  Tensor g = net.fc1->weight.grad();
  REQUIRE(g.defined());
  const void* before = g.data_ptr();
  net.zero_grad();
  CHECK(net.fc1->weight.grad().data_ptr() == before);
  for (float v : net.fc1->weight.grad().to_vector<float>()) CHECK(v == 0.0f);
}

TEST_CASE("Module::to moves parameters in place so layer handles stay valid", "[nn][cuda]") {
  if (!test::cuda_or_warn()) return;
  Net net;
  Tensor x = randn({2, 5});
  const auto ref = net(x).to_vector<float>();
  Tensor handle = net.fc1->weight;
  net.to(Device::cuda(0));
  CHECK(handle.device() == Device::cuda(0));
  CHECK(net.device() == Device::cuda(0));
  std::string why;
  CHECK(test::allclose(net(x.to(Device::cuda(0))).to(Device::cpu()), from_vector(ref, {2, 3}), 1e-5, 1e-6, &why));
  INFO(why);
  net.to(Device::cpu());
  CHECK(handle.device().is_cpu());
}

TEST_CASE("GELU, SiLU and Softplus layers compute their closed forms; GELU rejects an unknown approximation", "[nn]") {
  const std::vector<double> xs{-30.0, -2.0, -0.5, 0.0, 0.75, 3.0, 25.0};
  const Tensor x = from_vector(xs, {7}, TensorOptions{}.set_dtype(DType::f64));
  std::vector<double> gelu_ref, gelu_tanh_ref, silu_ref, softplus_ref;
  for (double v : xs) {
    gelu_ref.push_back(0.5 * v * std::erfc(-v / std::sqrt(2.0)));
    gelu_tanh_ref.push_back(0.5 * v * (1.0 + std::tanh(std::sqrt(2.0 / std::numbers::pi) * (v + 0.044715 * v * v * v))));
    silu_ref.push_back(v / (1.0 + std::exp(-v)));
    softplus_ref.push_back(v > 20.0 ? v : std::log1p(std::exp(v)));  // PyTorch's threshold 20
  }
  // f64 from the same doubles: the formulas differ only in rounding order (erf vs erfc, 1 + tanh),
  // <= ~1e-15 absolute for these |values| <= 30.
  const auto close = [](const Tensor& got, const std::vector<double>& ref) {
    const auto g = got.to_vector<double>();
    for (size_t i = 0; i < ref.size(); ++i)
      if (std::abs(g[i] - ref[i]) > 1e-12) return false;
    return true;
  };
  CHECK(close(nn::GELU().forward(x), gelu_ref));
  CHECK(close(nn::GELU("tanh").forward(x), gelu_tanh_ref));
  CHECK(close(nn::SiLU().forward(x), silu_ref));
  CHECK(close(nn::Softplus().forward(x), softplus_ref));
  CHECK(nn::GELU("tanh").str() == "GELU(approximate='tanh')");
  CHECK_THROWS_WITH(nn::GELU("fast"), Catch::Contains("\"none\" or \"tanh\"") && Catch::Contains("fast"));
  CHECK_THROWS_WITH(gelu(x, "erf"), Catch::Contains("gelu: approximate"));
}
