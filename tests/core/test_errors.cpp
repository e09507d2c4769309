/// @file tests/core/test_errors.cpp @brief Bad input to the core ops throws ember::Error whose message names the shapes, devices, dtypes or dims involved.
#include <catch2/catch.hpp>

#include "tests/harness/backends.h"

using namespace ember;
using Catch::Matchers::Contains;

namespace {
const TensorOptions kF64 = TensorOptions{}.set_dtype(DType::f64);
}

TEST_CASE("shape mismatches name both shapes", "[core][errors]") {
  const Tensor a = ones({2, 3}), b = ones({4}), m = ones({3, 5}), n = ones({4, 5});
  CHECK_THROWS_AS(a + b, Error);
  CHECK_THROWS_WITH(a + b, Contains("add") && Contains("[2, 3]") && Contains("[4]"));
  CHECK_THROWS_WITH(a * ones({3, 3}), Contains("mul") && Contains("[2, 3]") && Contains("[3, 3]"));
  CHECK_THROWS_WITH(matmul(a, n), Contains("matmul") && Contains("f32[2, 3]") && Contains("f32[4, 5]"));
  CHECK_THROWS_WITH(matmul(ones({2, 2, 3}), ones({3, 3, 5})), Contains("batch") && Contains("[2, 2, 3]") &&
                                                                 Contains("[3, 3, 5]"));
  CHECK_THROWS_WITH(matmul(ones({4}), m), Contains("inner") && Contains("f32[4]") && Contains("f32[3, 5]"));
  CHECK_THROWS_WITH(matmul(ones({2, 2, 3, 3}), m), Contains("f32[2, 2, 3, 3]"));
  CHECK_THROWS_WITH(matmul(ones({}), m), Contains("f32[]"));
  CHECK_THROWS_WITH(a.expand({4, 3}), Contains("[2, 3]") && Contains("[4, 3]"));
  CHECK_THROWS_WITH(a.view({4, 2}), Contains("[4, 2]") && Contains("[2, 3]"));
  CHECK_THROWS_WITH(a.permute({0}), Contains("1 dims") && Contains("[2, 3]"));
  CHECK_THROWS_WITH(a.permute({1, 1}), Contains("dim 1 repeated"));
}

TEST_CASE("dtype mismatches name both dtypes", "[core][errors]") {
  const Tensor f = ones({2}), d = ones({2}, kF64);
  CHECK_THROWS_WITH(f + d, Contains("add") && Contains("f32[2]") && Contains("f64[2]"));
  CHECK_THROWS_WITH(matmul(ones({2, 2}), ones({2, 2}, kF64)), Contains("f32[2, 2]") && Contains("f64[2, 2]"));
  const Tensor i = arange(3, TensorOptions{}.set_dtype(DType::i64));
  CHECK_THROWS_WITH(exp(i), Contains("exp") && Contains("i64"));
  CHECK_THROWS_WITH(sum(i), Contains("sum") && Contains("i64[3]"));
  CHECK_THROWS_WITH(softmax(i, 0), Contains("softmax") && Contains("i64[3]"));
}

TEST_CASE("out-of-range dims name the dim and the rank", "[core][errors]") {
  const Tensor x = ones({2, 3});
  CHECK_THROWS_WITH(sum(x, {2}), Contains("sum") && Contains("dim 2") && Contains("2 dims"));
  CHECK_THROWS_WITH(mean(x, {-3}), Contains("mean") && Contains("dim -3"));
  CHECK_THROWS_WITH(sum(x, {0, -2}), Contains("repeated"));
  CHECK_THROWS_WITH(max(x, 5), Contains("max") && Contains("dim 5"));
  CHECK_THROWS_WITH(softmax(x, 2), Contains("softmax") && Contains("dim 2"));
  CHECK_THROWS_WITH(log_softmax(x, -3), Contains("log_softmax") && Contains("dim -3"));
  CHECK_THROWS_WITH(x.transpose(0, 2), Contains("transpose") && Contains("dim 2"));
  CHECK_THROWS_WITH(x.select(2, 0), Contains("select") && Contains("dim 2"));
  CHECK_THROWS_WITH(x.select(1, 3), Contains("index 3") && Contains("size 3"));
  CHECK_THROWS_WITH(x.slice(0, 0, 1, 0), Contains("step") && Contains("0"));
  CHECK_THROWS_WITH(x.size(2), Contains("dim 2"));
  CHECK_THROWS_WITH(x.unsqueeze(4), Contains("unsqueeze") && Contains("dim 4"));
  CHECK_THROWS_WITH(x.flatten(1, 0), Contains("start_dim 1") && Contains("end_dim 0"));
}

TEST_CASE("backward on a non-scalar without a seed names the shape", "[core][errors]") {
  Tensor x = ones({3, 2}, TensorOptions{}.set_requires_grad(true));
  CHECK_THROWS_AS((x * 2.0).backward(), Error);
  CHECK_THROWS_WITH((x * 2.0).backward(), Contains("non-scalar") && Contains("f32[3, 2]"));
  CHECK_THROWS_WITH(ones({1}).backward(), Contains("does not require grad"));
  CHECK_THROWS_WITH(Tensor().backward(), Contains("undefined"));
}

TEST_CASE("device mismatches name both devices", "[core][errors][cuda]") {
  if (!test::has_cuda()) {
    // Without a CUDA backend, asking for the device is itself an error that says so.
    CHECK_THROWS_WITH(ones({2}).to(Device::cuda(0)), Contains("cuda:0"));
    return;
  }
  const Tensor c = ones({2}), g = ones({2}, TensorOptions{}.set_device(Device::cuda(0)));
  CHECK_THROWS_WITH(c + g, Contains("add") && Contains("on cpu") && Contains("on cuda:0"));
  CHECK_THROWS_WITH(matmul(ones({2, 2}), ones({2, 2}, TensorOptions{}.set_device(Device::cuda(0)))),
                    Contains("cpu") && Contains("cuda:0"));
  Tensor w = ones({2}, TensorOptions{}.set_requires_grad(true));
  CHECK_THROWS_WITH(sum(w * 2.0).backward(sum(g)), Contains("seed") && Contains("cuda:0") && Contains("cpu"));
  CHECK_THROWS_WITH(ones({2}).to(Device::cuda(7)), Contains("cuda:7"));
}

TEST_CASE("Device::parse accepts cpu/cuda[:n] and names anything else", "[core][errors]") {
  CHECK(Device::parse("cpu") == Device::cpu());
  CHECK(Device::parse("cuda:1") == Device::cuda(1));
  CHECK(Device::parse("cuda").is_cuda());
  CHECK_THROWS_WITH(Device::parse("tpu"), Contains("tpu"));
  CHECK_THROWS_WITH(Device::parse("cuda:x"), Contains("cuda:x"));
}
