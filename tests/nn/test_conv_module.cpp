/// @file tests/nn/test_conv_module.cpp @brief nn::Conv2d and nn::MaxPool2d layers: parameter names/shapes, PyTorch's default init bounds, forward, errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "nn/conv.h"
#include "nn/functional.h"
#include "nn/pooling.h"
#include "tests/nn/conv_reference.h"

using namespace ember;
using ember::test::random_input;
using ember::test::nnconv::check_close;
using Catch::Matchers::Contains;

TEST_CASE("Conv2d registers weight [out, in, k, k] and bias [out] drawn from U(-1/sqrt(fan_in), 1/sqrt(fan_in))", "[nn][conv]") {
  manual_seed(7);
  nn::Conv2d conv(nn::Conv2dOptions{.in_channels = 4, .out_channels = 8, .kernel_size = 3, .padding = 1});
  const auto params = conv.named_parameters();
  REQUIRE(params.size() == 2);
  CHECK(params[0].first == "weight");
  CHECK(params[0].second.shape() == Shape{8, 4, 3, 3});
  CHECK(params[1].first == "bias");
  CHECK(params[1].second.shape() == Shape{8});
  const double bound = 1.0 / std::sqrt(4.0 * 9.0);
  const auto w = conv.weight.to_vector<double>();
  const auto [lo, hi] = std::minmax_element(w.begin(), w.end());
  CHECK(*lo >= -bound);
  CHECK(*hi < bound);
  // 288 uniform draws: the extremes come within 5% of the bound with probability > 1 - 1e-6.
  CHECK(*lo < -0.95 * bound);
  CHECK(*hi > 0.95 * bound);
  for (double b : conv.bias.to_vector<double>()) CHECK(std::abs(b) <= bound);
  CHECK(conv.str() == "Conv2d(4, 8, kernel_size=3, stride=1, padding=1)");
  nn::Conv2d no_bias(nn::Conv2dOptions{.in_channels = 1, .out_channels = 2, .kernel_size = 2, .bias = false});
  CHECK(no_bias.named_parameters().size() == 1);
  CHECK_FALSE(no_bias.bias.defined());
}

TEST_CASE("Conv2d forward is functional::conv2d with its options; input errors name the channel count", "[nn][conv]") {
  nn::Conv2d conv(nn::Conv2dOptions{.in_channels = 3, .out_channels = 5, .kernel_size = 3, .stride = 2, .padding = 1});
  const Tensor x = random_input({2, 3, 7, 7}, 1);
  const Tensor y = conv.forward(x);
  CHECK(y.shape() == Shape{2, 5, 4, 4});
  check_close(y, nn::functional::conv2d(x, conv.weight, conv.bias, 2, 1), 0.0, 0.0);
  CHECK_THROWS_WITH(conv.forward(zeros({2, 4, 7, 7})), Contains("expected input [N, 3, H, W]") && Contains("[2, 4, 7, 7]"));
  CHECK_THROWS_WITH(nn::Conv2d(0, 3, 3), Contains("in_channels and out_channels must be positive"));
  CHECK_THROWS_WITH(nn::Conv2d(nn::Conv2dOptions{.in_channels = 1, .out_channels = 1, .kernel_size = 3, .stride = 0}),
                    Contains("stride must be positive"));
}

TEST_CASE("MaxPool2d: stride defaults to the kernel size; forward is functional::max_pool2d", "[nn][pool]") {
  nn::MaxPool2d pool(2);
  CHECK(pool.options().stride == 2);
  CHECK(pool.named_parameters().empty());
  CHECK(pool.str() == "MaxPool2d(kernel_size=2, stride=2, padding=0)");
  const Tensor x = random_input({2, 3, 7, 7}, 2);
  check_close(pool.forward(x), nn::functional::max_pool2d(x, 2), 0.0, 0.0);
  CHECK(pool.forward(x).shape() == Shape{2, 3, 3, 3});
  nn::MaxPool2d overlap(nn::MaxPool2dOptions{.kernel_size = 3, .stride = 1, .padding = 1});
  CHECK(overlap.forward(x).shape() == Shape{2, 3, 7, 7});
  CHECK_THROWS_WITH(nn::MaxPool2d(nn::MaxPool2dOptions{.kernel_size = 2, .padding = 2}),
                    Contains("padding must be between 0 and kernel_size / 2"));
}
