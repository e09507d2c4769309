/// @file tests/nn/test_batchnorm_module.cpp @brief nn::BatchNorm1d/2d: PyTorch names and initial values, running statistics, evaluation mode, window-merged statistics, errors.
#include <catch2/catch.hpp>

#include <cmath>

#include "kernels/runtime_stats.h"
#include "nn/batchnorm.h"
#include "tests/nn/conv_reference.h"

using namespace ember;
using ember::test::random_input;
using ember::test::nnconv::check_close;
using ember::test::nnconv::kF64;
using Catch::Matchers::Contains;

namespace {

/// Per-channel mean and unbiased variance of x [N, C, *] in double.
std::pair<std::vector<double>, std::vector<double>> mean_unbiased(const Tensor& x) {
  const auto v = x.to_vector<double>();
  const int64_t n = x.size(0), c = x.size(1), s = x.numel() / (n * c), m = n * s;
  std::vector<double> mean(static_cast<size_t>(c), 0.0), var(static_cast<size_t>(c), 0.0);
  for (size_t i = 0; i < v.size(); ++i) mean[static_cast<size_t>((static_cast<int64_t>(i) / s) % c)] += v[i];
  for (double& mu : mean) mu /= static_cast<double>(m);
  for (size_t i = 0; i < v.size(); ++i) {
    const size_t ch = static_cast<size_t>((static_cast<int64_t>(i) / s) % c);
    var[ch] += (v[i] - mean[ch]) * (v[i] - mean[ch]);
  }
  for (double& s2 : var) s2 /= static_cast<double>(m - 1);
  return {mean, var};
}

/// A model holding one BN layer under the name "bn" (finish_window and state_dict recurse into it).
struct Holder : nn::Module {
  std::shared_ptr<nn::BatchNormBase> bn;
  explicit Holder(std::shared_ptr<nn::BatchNormBase> b) : bn(register_module("bn", std::move(b))) {}
  Tensor forward(const Tensor& x) override { return bn->forward(x); }
};

}  // namespace

TEST_CASE("BatchNorm parameters and buffers have PyTorch's names, shapes and initial values", "[nn][bn]") {
  nn::BatchNorm2d bn(3);
  const auto params = bn.named_parameters();
  REQUIRE(params.size() == 2);
  CHECK(params[0].first == "weight");
  CHECK(params[1].first == "bias");
  CHECK(params[0].second.to_vector<float>() == std::vector<float>{1, 1, 1});
  CHECK(params[1].second.to_vector<float>() == std::vector<float>{0, 0, 0});
  CHECK(params[0].second.requires_grad());
  const auto bufs = bn.named_buffers();
  REQUIRE(bufs.size() == 3);
  CHECK(bufs[0].first == "running_mean");
  CHECK(bufs[1].first == "running_var");
  CHECK(bufs[2].first == "num_batches_tracked");
  CHECK(bufs[0].second.to_vector<float>() == std::vector<float>{0, 0, 0});
  CHECK(bufs[1].second.to_vector<float>() == std::vector<float>{1, 1, 1});
  CHECK(bufs[2].second.dtype() == DType::i64);
  CHECK(bufs[2].second.shape() == Shape{});
  CHECK(bufs[2].second.item() == 0.0);
  nn::BatchNorm1d plain(4, {.affine = false, .track_running_stats = false});
  CHECK(plain.named_parameters().empty());
  CHECK(plain.named_buffers().empty());
  CHECK(bn.str() == "BatchNorm2d(3, eps=1e-05, momentum=0.100000, affine=true, track_running_stats=true)");
}

TEST_CASE("BatchNorm training moves the running statistics by momentum with the unbiased variance", "[nn][bn][cuda]") {
  for (Device d : test::devices()) {
    INFO("device " << d);
    nn::BatchNorm2d bn(3);
    bn.to(d);
    const Tensor x1 = random_input({4, 3, 5, 5}, 1, -1.0, 3.0), x2 = random_input({2, 3, 5, 5}, 2, -2.0, 1.0);
    bn.forward(x1.to(d));
    bn.forward(x2.to(d));
    const auto [m1, v1] = mean_unbiased(x1);
    const auto [m2, v2] = mean_unbiased(x2);
    std::vector<double> em(3), ev(3);
    for (size_t c = 0; c < 3; ++c) {
      em[c] = 0.9 * (0.1 * m1[c]) + 0.1 * m2[c];
      ev[c] = 0.9 * (0.9 + 0.1 * v1[c]) + 0.1 * v2[c];
    }
    check_close(bn.running_mean, from_vector(em, {3}, kF64), 1e-5, 1e-6);  // f32 statistics and two updates
    check_close(bn.running_var, from_vector(ev, {3}, kF64), 1e-5, 1e-6);
    CHECK(bn.num_batches_tracked.item() == 2.0);
  }
}

TEST_CASE("BatchNorm with momentum = nullopt keeps the cumulative average", "[nn][bn][cuda]") {
  for (Device d : test::devices()) {
    INFO("device " << d);
    nn::BatchNorm1d bn(2, {.momentum = std::nullopt});
    bn.to(d);
    const std::vector<Tensor> xs{random_input({5, 2}, 3), random_input({6, 2}, 4, 0.0, 2.0),
                                 random_input({4, 2}, 5, -3.0, 1.0)};
    // The k-th update weighs 1 / k, read from num_batches_tracked where it lives: no host sync on a GPU.
    const int64_t syncs = kernels::runtime_stats(DeviceType::CUDA).host_syncs;
    for (const Tensor& x : xs) bn.forward(x.to(d));
    CHECK(kernels::runtime_stats(DeviceType::CUDA).host_syncs == syncs);
    std::vector<double> mean(2, 0.0), var(2, 0.0);
    for (const Tensor& x : xs) {
      const auto [m, v] = mean_unbiased(x);
      for (size_t c = 0; c < 2; ++c) mean[c] += m[c] / 3.0, var[c] += v[c] / 3.0;
    }
    check_close(bn.running_mean, from_vector(mean, {2}, kF64), 1e-5, 1e-6);
    check_close(bn.running_var, from_vector(var, {2}, kF64), 1e-5, 1e-6);
    CHECK(bn.num_batches_tracked.item() == 3.0);
  }
}

TEST_CASE("BatchNorm in evaluation mode normalizes with the running statistics and updates nothing", "[nn][bn][cuda]") {
  for (Device d : test::devices()) {
    INFO("device " << d);
    nn::BatchNorm1d bn(2, {.eps = 1e-3});
    bn.running_mean.copy_(from_vector(std::vector<float>{0.5f, -1.f}, {2}));
    bn.running_var.copy_(from_vector(std::vector<float>{4.f, 0.25f}, {2}));
    bn.weight.detach().copy_(from_vector(std::vector<float>{2.f, -1.f}, {2}));
    bn.to(d);
    bn.eval();
    const Tensor x = random_input({3, 2, 4}, 5);
    const Tensor y = bn.forward(x.to(d));
    const auto xv = x.to_vector<double>(), yv = y.to_vector<double>();
    const double m[2] = {0.5, -1.0}, v[2] = {4.0, 0.25}, w[2] = {2.0, -1.0};
    for (size_t i = 0; i < xv.size(); ++i) {
      const size_t c = (i / 4) % 2;
      CHECK(yv[i] == Approx((xv[i] - m[c]) / std::sqrt(v[c] + 1e-3) * w[c]).epsilon(1e-5).margin(1e-6));
    }
    CHECK(bn.num_batches_tracked.item() == 0.0);
    CHECK(bn.running_mean.to_vector<float>() == std::vector<float>{0.5f, -1.f});
  }
}

TEST_CASE("BatchNorm window stats: micro-batches 3 + 3 + 1 give the running stats of one batch of 7", "[nn][bn][cuda]") {
  for (Device d : test::devices()) {
    for (const Shape& shape : {Shape{7, 4, 3}, Shape{7, 3, 5, 5}}) {  // [1, C] alone would be 1 value per channel
      INFO("device " << d << ", input " << shape_str(shape));
      const int64_t c = shape[1];
      const auto make = [&](bool window) -> std::shared_ptr<nn::BatchNormBase> {
        if (shape.size() == 3) return std::make_shared<nn::BatchNorm1d>(c, nn::BatchNormOptions{.window_stats = window});
        return std::make_shared<nn::BatchNorm2d>(c, nn::BatchNormOptions{.window_stats = window});
      };
      Holder windowed(make(true)), plain(make(false)), per_micro(make(false));
      for (auto* h : {&windowed, &plain, &per_micro}) h->to(d);
      for (int window = 0; window < 2; ++window) {
        const Tensor x = random_input(shape, 10 + static_cast<uint64_t>(window), -1.0, 2.0).to(d);
        for (auto [lo, hi] : {std::pair<int64_t, int64_t>{0, 3}, {3, 6}, {6, 7}}) {
          const Tensor part = x.slice(0, lo, hi);
          // Outputs are unchanged by the option: each micro-batch is normalized with its own statistics.
          check_close(windowed.forward(part), per_micro.forward(part), 0.0, 0.0);
        }
        // Nothing moves before the window ends.
        CHECK(windowed.bn->num_batches_tracked.item() == static_cast<double>(window));
        CHECK(windowed.bn->window_batches() == 3);
        windowed.finish_window();
        plain.forward(x);
        CHECK(windowed.bn->window_batches() == 0);
        // Micro-batch statistics are f32 (rounded from double on the CPU, f32 Welford on CUDA) merged in
        // double; the large batch's are f32 too: they agree to ~1e-7 relative, asserted at 1e-6.
        check_close(windowed.bn->running_mean, plain.bn->running_mean, 1e-6, 1e-7);
        check_close(windowed.bn->running_var, plain.bn->running_var, 1e-6, 1e-7);
        CHECK(windowed.bn->num_batches_tracked.item() == static_cast<double>(window + 1));
        // The per-micro-batch updates of PyTorch's rule are measurably different.
        CHECK(per_micro.bn->num_batches_tracked.item() == 3.0 * (window + 1));
      }
      std::string why;
      CHECK_FALSE(test::allclose(per_micro.bn->running_var, plain.bn->running_var, 1e-4, 1e-5, &why));
      windowed.finish_window();  // an empty window is a no-op
      CHECK(windowed.bn->num_batches_tracked.item() == 2.0);
    }
  }
}

TEST_CASE("merge_window_stats gives the count, mean and M2 of the union (naive reference)", "[nn][bn]") {
  // Two sets of values per channel, one shifted far from zero (where sum-of-squares formulas cancel).
  const std::vector<std::vector<double>> a{{1.0, 2.0, 4.0}, {1e4 + 1.0, 1e4 + 3.0, 1e4 - 2.0}};
  const std::vector<std::vector<double>> b{{-1.0, 0.5}, {1e4 + 0.25, 1e4 + 7.0}};
  const auto stats = [](const std::vector<std::vector<double>>& per_channel) {
    nn::WindowStats w;
    w.count = static_cast<int64_t>(per_channel[0].size());
    for (const auto& v : per_channel) {
      double mu = 0.0, m2 = 0.0;
      for (double x : v) mu += x;
      mu /= static_cast<double>(v.size());
      for (double x : v) m2 += (x - mu) * (x - mu);
      w.mean.push_back(mu);
      w.m2.push_back(m2);
    }
    return w;
  };
  std::vector<std::vector<double>> both = a;
  for (size_t c = 0; c < 2; ++c) both[c].insert(both[c].end(), b[c].begin(), b[c].end());
  const nn::WindowStats want = stats(both);
  nn::WindowStats got;                  // empty
  nn::merge_window_stats(got, stats(a));  // empty + a = a
  nn::merge_window_stats(got, nn::WindowStats{});  // + empty: unchanged
  nn::merge_window_stats(got, stats(b));
  CHECK(got.count == 5);
  for (size_t c = 0; c < 2; ++c) {
    CHECK(got.mean[c] == Approx(want.mean[c]).epsilon(1e-14));  // double, a few operations
    CHECK(got.m2[c] == Approx(want.m2[c]).epsilon(1e-10));     // 1e4-offset values: ~1e-12 relative
  }
  nn::WindowStats three{1, {0.0, 0.0, 0.0}, {0.0, 0.0, 0.0}};
  CHECK_THROWS_WITH(nn::merge_window_stats(got, three), Contains("channel counts differ: 2 and 3"));
}

TEST_CASE("BatchNorm discard_window drops the window and leaves the running statistics; set_window checks sizes",
          "[nn][bn]") {
  Holder h(std::make_shared<nn::BatchNorm1d>(2, nn::BatchNormOptions{.window_stats = true}));
  h.forward(random_input({4, 2}, 21));
  h.finish_window();
  const auto mean = h.bn->running_mean.to_vector<float>(), var = h.bn->running_var.to_vector<float>();
  h.forward(random_input({4, 2}, 22, 5.0, 9.0));
  CHECK(h.bn->window().count == 4);
  h.discard_window();  // recurses into the layer
  CHECK(h.bn->window().count == 0);
  CHECK(h.bn->window_batches() == 0);
  h.finish_window();  // nothing left to apply
  CHECK(h.bn->running_mean.to_vector<float>() == mean);
  CHECK(h.bn->running_var.to_vector<float>() == var);
  CHECK(h.bn->num_batches_tracked.item() == 1.0);
  // A window put in from outside (DataParallel's cross-rank merge) is what finish_window applies.
  h.bn->set_window(nn::WindowStats{5, {1.0, -2.0}, {8.0, 4.0}});
  h.finish_window();
  const auto m2 = h.bn->running_mean.to_vector<double>(), v2 = h.bn->running_var.to_vector<double>();
  for (size_t c = 0; c < 2; ++c) {
    const double mu = c == 0 ? 1.0 : -2.0, unbiased = (c == 0 ? 8.0 : 4.0) / 4.0;
    CHECK(m2[c] == Approx(0.9 * mean[c] + 0.1 * mu).epsilon(1e-6));  // f32 update
    CHECK(v2[c] == Approx(0.9 * var[c] + 0.1 * unbiased).epsilon(1e-6));
  }
  CHECK_THROWS_WITH(h.bn->set_window(nn::WindowStats{3, {1.0}, {1.0}}),
                    Contains("BatchNorm1d(2)::set_window") && Contains("2 means and M2 values"));
}

TEST_CASE("BatchNorm rejects inputs with the wrong channel count or rank, naming the expected shape", "[nn][bn]") {
  nn::BatchNorm2d bn2(16);
  CHECK_THROWS_WITH(bn2.forward(zeros({2, 8, 4, 4})),
                    Contains("BatchNorm2d(16)") && Contains("[N, 16, H, W]") && Contains("[2, 8, 4, 4]"));
  CHECK_THROWS_WITH(bn2.forward(zeros({2, 16})), Contains("[N, 16, H, W]"));
  nn::BatchNorm1d bn1(5);
  CHECK_THROWS_WITH(bn1.forward(zeros({2, 4})), Contains("BatchNorm1d(5)") && Contains("[N, 5] or [N, 5, L]"));
  CHECK_THROWS_WITH(bn1.forward(zeros({2, 5, 2, 2})), Contains("[N, 5] or [N, 5, L]"));
  CHECK_THROWS_WITH(bn1.forward(zeros({1, 5})), Contains("more than 1 value per channel"));
  CHECK_THROWS_WITH(nn::BatchNorm1d(0), Contains("num_features must be positive"));
  CHECK_THROWS_WITH(nn::BatchNorm1d(3, {.momentum = 1.5}), Contains("momentum must be in [0, 1]"));
  CHECK_THROWS_WITH(nn::BatchNorm1d(3, {.track_running_stats = false, .window_stats = true}),
                    Contains("window_stats needs track_running_stats"));
}
