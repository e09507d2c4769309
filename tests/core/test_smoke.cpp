/// @file tests/core/test_smoke.cpp @brief First end-to-end checks: factories, views, elementwise autograd against hand-derived values.
#include <catch2/catch.hpp>

#include "tests/harness/backends.h"

using namespace ember;

TEST_CASE("add/mul autograd matches hand-derived gradients", "[core][autograd]") {
  Tensor a = from_vector(std::vector<float>{1, 2, 3}, {3}, TensorOptions{}.set_requires_grad(true));
  Tensor b = from_vector(std::vector<float>{4, 5, 6}, {3}, TensorOptions{}.set_requires_grad(true));
  Tensor y = sum(a * b + a);
  CHECK(y.item() == Approx(1 * 4 + 2 * 5 + 3 * 6 + 6));
  y.backward();
  CHECK(a.grad().to_vector<float>() == std::vector<float>{5, 6, 7});
  CHECK(b.grad().to_vector<float>() == std::vector<float>{1, 2, 3});
}
