/// @file tests/nn/test_attention.cpp @brief Causal softmax, scaled dot-product attention and nn::CausalSelfAttention: naive loops, f64 gradient checks, exact zeros under the mask, memory freed by backward, PyTorch's values.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "nn/nn.h"
#include "tests/harness/backends.h"
#include "tests/harness/naive_attention.h"

using namespace ember;

namespace {

#include "tests/nn/attention_fixture.inc"

const TensorOptions kF64 = TensorOptions{}.set_dtype(DType::f64);

/// Entries of a [..., T, T] tensor in masked positions (key j > query i) that are not exactly 0.
int64_t masked_nonzeros(const Tensor& t) {
  const auto v = t.to(Device::cpu()).to(DType::f64).contiguous().to_vector<double>();
  const int64_t n = t.size(-1), rows = t.numel() / n;
  int64_t bad = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = r % n + 1; j < n; ++j) bad += v[static_cast<size_t>(r * n + j)] != 0.0;
  return bad;
}

/// Naive backward of the causal softmax in double: g_s[i][j] = scale * p_ij (g_ij - sum_{k<=i} p_ik g_ik)
/// for j <= i, 0 above the diagonal.
test::NdArray naive_causal_softmax_grad(const test::NdArray& p, const test::NdArray& g, double scale) {
  const int64_t t = p.shape.back(), rows = static_cast<int64_t>(p.v.size()) / t;
  test::NdArray r{p.shape, std::vector<double>(p.v.size(), 0.0)};
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t n = row % t + 1;
    double dot = 0.0;
    for (int64_t j = 0; j < n; ++j) dot += p.v[static_cast<size_t>(row * t + j)] * g.v[static_cast<size_t>(row * t + j)];
    for (int64_t j = 0; j < n; ++j) {
      const auto at = static_cast<size_t>(row * t + j);
      r.v[at] = scale * p.v[at] * (g.v[at] - dot);
    }
  }
  return r;
}

Tensor cpu64(const Tensor& t) { return t.detach().to(Device::cpu()).to(DType::f64); }

int64_t charged(const Tensor& t) { return static_cast<int64_t>((t.nbytes() + 63) / 64 * 64); }
int64_t current() { return allocator_stats(Device::cpu()).current_bytes; }

/// Largest relative error between central differences and the autograd gradients of
/// sum(m(x) * g) with respect to x and every parameter of m (f64 CPU; as test::gradcheck).
double module_gradcheck(nn::Module& m, const Tensor& x, const Tensor& g) {
  Tensor xg = x.detach().clone().set_requires_grad(true);
  m.zero_grad();
  sum(m(xg) * g).backward();
  auto loss = [&] {
    NoGradGuard ng;
    return sum(m(xg) * g).item();
  };
  double worst = 0.0;
  std::vector<Tensor> all{xg};
  for (const Tensor& p : m.parameters()) all.push_back(p);
  for (Tensor& t : all) {
    const auto analytic = t.grad().to_vector<double>();
    double* v = t.data<double>();
    for (int64_t i = 0; i < t.numel(); ++i) {
      const double orig = v[i], eps = 1e-6;
      v[i] = orig + eps;
      const double fp = loss();
      v[i] = orig - eps;
      const double fm = loss();
      v[i] = orig;
      const double num = (fp - fm) / (2 * eps), an = analytic[static_cast<size_t>(i)];
      worst = std::max(worst, std::abs(num - an) / std::max(1.0, std::abs(num) + std::abs(an)));
    }
  }
  return worst;
}

}  // namespace

TEST_CASE("causal_softmax equals a naive masked softmax; masked probabilities and gradients are exactly 0",
          "[nn][attention][cuda]") {
  const double scale = 0.6;
  // Masked scores are NaN: they must not be read (a separate -inf mask pass would propagate them).
  std::vector<double> xv = test::random_input({2, 3, 7, 7}, 80, -4.0, 4.0, kF64).to_vector<double>();
  for (int64_t r = 0; r < 2 * 3 * 7; ++r)
    for (int64_t j = r % 7 + 1; j < 7; ++j) xv[static_cast<size_t>(r * 7 + j)] = std::numeric_limits<double>::quiet_NaN();
  const Tensor x64 = from_vector(xv, {2, 3, 7, 7}, kF64);
  const Tensor g64 = test::random_input({2, 3, 7, 7}, 81, -1.0, 1.0, kF64);
  const test::NdArray p_ref = test::naive_causal_softmax(test::to_nd(x64), scale);
  const Tensor gs_ref = test::from_nd(naive_causal_softmax_grad(p_ref, test::to_nd(g64), scale));
  for (Device d : test::devices()) {
    for (DType dt : {DType::f64, DType::f32}) {
      if (d.is_cuda() && dt == DType::f64) continue;  // CUDA computes in f32
      INFO(d.str() << " " << dtype_name(dt));
      Tensor x = x64.to(dt).to(d).clone();
      x.set_requires_grad(true);
      Tensor p = causal_softmax(x, scale);
      p.backward(g64.to(dt).to(d));
      // f64: exp/sum/divide in double, ~1e-15. f32: softmax of 7 terms, the test_cuda_reduce_softmax
      // tolerance (relative 1e-5, absolute 1e-6 for the backward's cancellation in dp - sum p dp).
      const double rtol = dt == DType::f64 ? 1e-12 : 1e-5, atol = dt == DType::f64 ? 1e-14 : 1e-6;
      std::string why;
      CHECK(test::allclose(cpu64(p), test::from_nd(p_ref), rtol, atol, &why));
      CHECK(test::allclose(cpu64(x.grad()), gs_ref, rtol, atol, &why));
      INFO(why);
      CHECK(masked_nonzeros(p) == 0);
      CHECK(masked_nonzeros(x.grad()) == 0);
    }
  }
}

TEST_CASE("causal_softmax gradients agree with finite differences in f64", "[nn][attention]") {
  const Tensor w = test::random_input({2, 3, 6, 6}, 83, -1.0, 1.0, kF64);
  auto f = [&](const std::vector<Tensor>& in) { return sum(causal_softmax(in[0], 0.8) * w); };
  // Central differences with eps 1e-6 in f64: truncation ~eps^2, rounding ~1e-16/eps = 1e-10. The masked
  // entries' finite differences are exactly 0 (never read), as their analytic gradient must be.
  CHECK(test::gradcheck(f, {test::random_input({2, 3, 6, 6}, 82, -3.0, 3.0, kF64)}) < 1e-6);
}

TEST_CASE("scaled_dot_product_attention equals a naive loop on every device", "[nn][attention][cuda]") {
  const Tensor q = test::random_input({2, 3, 6, 4}, 90), k = test::random_input({2, 3, 6, 4}, 91),
               v = test::random_input({2, 3, 6, 5}, 92);
  for (const bool causal : {true, false}) {
    const Tensor ref = test::from_nd(test::naive_attention(test::to_nd(q), test::to_nd(k), test::to_nd(v), causal));
    for (Device d : test::devices()) {
      INFO(d.str() << " causal " << causal);
      const Tensor y = scaled_dot_product_attention(q.to(d), k.to(d), v.to(d), causal);
      CHECK(y.shape() == Shape{2, 3, 6, 5});
      std::string why;
      // f32 dot products of 4 terms and weighted sums of 6 of O(1) values: relative 1e-5 + absolute 1e-6
      // (the tolerance of sums of <= 32 terms in tests/harness/op_cases.cpp).
      CHECK(test::allclose(cpu64(y), ref, 1e-5, 1e-6, &why));
      INFO(why);
    }
  }
}

TEST_CASE("scaled_dot_product_attention gradients agree with finite differences in f64", "[nn][attention]") {
  for (const bool causal : {true, false}) {
    INFO("causal " << causal);
    auto f = [&](const std::vector<Tensor>& in) {
      // Non-contiguous [B, H, T, hd] views as CausalSelfAttention passes them.
      const Tensor q = in[0].transpose(1, 2), k = in[1].transpose(1, 2), v = in[2].transpose(1, 2);
      return sum(tanh(scaled_dot_product_attention(q, k, v, causal)));
    };
    CHECK(test::gradcheck(f, {test::random_input({2, 5, 2, 3}, 93, -1.5, 1.5, kF64),
                              test::random_input({2, 5, 2, 3}, 94, -1.5, 1.5, kF64),
                              test::random_input({2, 5, 2, 3}, 95, -1.5, 1.5, kF64)}) < 1e-6);
  }
}

TEST_CASE("attention's saved activations are freed by backward", "[nn][attention][memory]") {
  Tensor q = test::random_input({2, 2, 8, 4}, 96).set_requires_grad(true);
  Tensor k = test::random_input({2, 2, 8, 4}, 97).set_requires_grad(true);
  Tensor v = test::random_input({2, 2, 8, 4}, 98).set_requires_grad(true);
  const Tensor g = test::random_input({2, 2, 8, 4}, 99);
  const int64_t baseline = current();
  {
    Tensor loss = sum(scaled_dot_product_attention(q, k, v) * g);
    CHECK(current() > baseline + charged(loss));  // q, k, v, p and the output are held by the graph
    loss.backward();
    // The loss is still held: only backward itself can have released what the nodes saved.
    CHECK(current() == baseline + charged(q) + charged(k) + charged(v) + charged(loss));
  }
  CHECK(current() == baseline + charged(q) + charged(k) + charged(v));

  manual_seed(5);
  nn::CausalSelfAttention attn(8, 2);
  const Tensor x = test::random_input({2, 6, 8}, 100);
  attn(x).sum().backward();  // allocates the .grad buffers
  const int64_t with_grads = current();
  {
    Tensor loss = attn(x).sum();
    loss.backward();
    CHECK(current() == with_grads + charged(loss));
  }
  CHECK(current() == with_grads);
}

TEST_CASE("CausalSelfAttention has nanoGPT's parameter names and shapes and checks its input", "[nn][attention]") {
  nn::CausalSelfAttention attn(12, 3);
  const NamedTensors ps = attn.named_parameters();
  REQUIRE(ps.size() == 4);
  CHECK(ps[0].first == "c_attn.weight");
  CHECK(ps[0].second.shape() == Shape{36, 12});
  CHECK(ps[1].first == "c_attn.bias");
  CHECK(ps[1].second.shape() == Shape{36});
  CHECK(ps[2].first == "c_proj.weight");
  CHECK(ps[2].second.shape() == Shape{12, 12});
  CHECK(ps[3].first == "c_proj.bias");
  CHECK(attn(zeros({2, 5, 12})).shape() == Shape{2, 5, 12});
  CHECK(attn(zeros({1, 1, 12})).shape() == Shape{1, 1, 12});
  CHECK(nn::CausalSelfAttention(12, 3, /*bias=*/false).named_parameters().size() == 2);
  CHECK_THROWS_WITH(attn(zeros({2, 5, 8})), Catch::Contains("expected input [B, T, 12]") && Catch::Contains("[2, 5, 8]"));
  CHECK_THROWS_WITH(nn::CausalSelfAttention(10, 3), Catch::Contains("multiple of n_head"));
}

TEST_CASE("attention ops reject bad shapes naming the operands", "[nn][attention]") {
  const Tensor q = zeros({2, 2, 5, 4}), k6 = zeros({2, 2, 6, 4}), v = zeros({2, 2, 5, 3});
  CHECK_THROWS_WITH(causal_softmax(zeros({2, 3, 4}), 1.0), Catch::Contains("[..., T, T]") && Catch::Contains("[2, 3, 4]"));
  CHECK_THROWS_WITH(causal_softmax(zeros({3, 3}), std::nan("")), Catch::Contains("scale must be finite"));
  CHECK_THROWS_WITH(scaled_dot_product_attention(q, k6, zeros({2, 2, 6, 3})),
                    Catch::Contains("as many keys as queries") && Catch::Contains("[2, 2, 6, 4]"));
  CHECK_THROWS_WITH(scaled_dot_product_attention(q, zeros({2, 2, 5, 3}), v), Catch::Contains("head size"));
  CHECK_THROWS_WITH(scaled_dot_product_attention(q, zeros({2, 3, 5, 4}), v), Catch::Contains("leading"));
  CHECK_THROWS_WITH(scaled_dot_product_attention(zeros({5, 4}), zeros({5, 4}), zeros({5, 4})),
                    Catch::Contains("3-D") && Catch::Contains("[5, 4]"));
  CHECK(scaled_dot_product_attention(q, k6, zeros({2, 2, 6, 3}), false).shape() == Shape{2, 2, 5, 3});
}

TEST_CASE("CausalSelfAttention gradients agree with finite differences in f64", "[nn][attention]") {
  manual_seed(7);
  nn::CausalSelfAttention attn(nn::CausalSelfAttentionOptions{.n_embd = 6, .n_head = 2, .dtype = DType::f64});
  const Tensor x = test::random_input({2, 4, 6}, 101, -1.0, 1.0, kF64);
  const Tensor g = test::random_input({2, 4, 6}, 102, -1.0, 1.0, kF64);
  CHECK(module_gradcheck(attn, x, g) < 1e-6);  // eps 1e-6 in f64, as test::gradcheck
}

TEST_CASE("CausalSelfAttention matches PyTorch (nanoGPT's module, hand-written attention)", "[nn][attention][cuda]") {
  namespace af = attention_fixture;
  const Shape xs{af::B, af::T, af::C};
  auto state = [](DType dt) {
    const TensorOptions o = TensorOptions{}.set_dtype(dt);
    return NamedTensors{{"c_attn.weight", from_vector(af::c_attn_weight, {3 * af::C, af::C}, o)},
                        {"c_attn.bias", from_vector(af::c_attn_bias, {3 * af::C}, o)},
                        {"c_proj.weight", from_vector(af::c_proj_weight, {af::C, af::C}, o)},
                        {"c_proj.bias", from_vector(af::c_proj_bias, {af::C}, o)}};
  };
  for (Device d : test::devices()) {
    for (DType dt : {DType::f64, DType::f32}) {
      if (d.is_cuda() && dt == DType::f64) continue;
      INFO(d.str() << " " << dtype_name(dt));
      nn::CausalSelfAttention attn(nn::CausalSelfAttentionOptions{.n_embd = af::C, .n_head = af::H, .dtype = dt});
      attn.load_state_dict(state(dt));  // strict: also checks the names and [out, in] shapes
      attn.to(d);
      const TensorOptions o = TensorOptions{}.set_dtype(dt).set_device(d);
      Tensor x = from_vector(af::x, xs, o).set_requires_grad(true);
      const Tensor y = attn(x);
      y.backward(from_vector(af::g, xs, o));
      // f64: both sides compute in double (different summation orders): 1e-10 leaves 1e3x over the
      // observed < 1e-13. f32: products and sums of <= 24 O(1) terms through two Linears, the scores'
      // softmax (|scores| <= ~5 amplifies their absolute error into p's relative error) and the
      // gradients' sums over B*T = 10 tokens: at most 2.8e-6 observed (c_attn.weight's gradient), so
      // 3e-5 (relative and absolute, values are O(1)) gives a 10x margin. f64 passes at 1e-13.
      const double tol = dt == DType::f64 ? 1e-10 : 3e-5;
      const NamedTensors params = attn.named_parameters();
      const std::vector<std::pair<Tensor, const std::vector<double>*>> checks{
          {y, &af::y},
          {x.grad(), &af::grad_x},
          {params[0].second.grad(), &af::grad_c_attn_weight},
          {params[1].second.grad(), &af::grad_c_attn_bias},
          {params[2].second.grad(), &af::grad_c_proj_weight},
          {params[3].second.grad(), &af::grad_c_proj_bias}};
      for (size_t i = 0; i < checks.size(); ++i) {
        const Tensor got = cpu64(checks[i].first);
        std::string why;
        const bool close = test::allclose(got, from_vector(*checks[i].second, got.shape(), kF64), tol, tol, &why);
        INFO("tensor " << i << ": " << why);
        CHECK(close);
      }
    }
  }
}
