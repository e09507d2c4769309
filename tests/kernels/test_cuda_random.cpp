/// @file tests/kernels/test_cuda_random.cpp @brief CUDA Philox random fill against the CPU: bitwise in the emulator; on a GPU uniform bitwise and normal within 1 ulp.
#include <catch2/catch.hpp>

#include "kernels/random.h"
#include "tests/kernels/cuda_test_util.h"

using namespace ember;
using kernels::Distribution;

TEST_CASE("cuda fill_random draws the CPU's numbers", "[cuda][random]") {
  if (!test::cuda_or_warn()) return;
  // Normal draws go through log/sin/cos in double: glibc and CUDA's libdevice may differ by a double
  // ulp, which can flip the final float rounding on a GPU (never in the emulator, which uses glibc).
  const int64_t normal_ulp = test::cuda_emulated() ? 0 : 1;
  for (unsigned cap : test::kGridCaps) {
    const test::GridCap grid(cap);  // cap 2: 5003 and 100003 values take several grid-stride steps
    for (int64_t n : {int64_t{1}, int64_t{31}, int64_t{33}, int64_t{5003}, int64_t{100003}}) {
      for (uint64_t offset : {uint64_t{0}, uint64_t{6}}) {  // offset 6: a draw starting mid Philox group
        INFO(grid.str() << ", n = " << n << ", offset = " << offset);
        Tensor uh = empty({n}), ud = empty({n}, test::kOnCuda);
        kernels::fill_random(uh, Distribution::Uniform, -2.0, 3.0, 1234, offset);
        kernels::fill_random(ud, Distribution::Uniform, -2.0, 3.0, 1234, offset);
        CHECK(test::max_ulp(ud, uh) == 0);
        Tensor nh = empty({n}), nd = empty({n}, test::kOnCuda);
        kernels::fill_random(nh, Distribution::Normal, 0.5, 2.0, 99, offset);
        kernels::fill_random(nd, Distribution::Normal, 0.5, 2.0, 99, offset);
        CHECK(test::max_ulp(nd, nh) <= normal_ulp);
      }
    }
  }
  // Through the public API: the same generator state gives the same tensor on either device.
  Generator g1(42), g2(42);
  CHECK(test::max_ulp(randn({1000}, test::kOnCuda, &g1), randn({1000}, {}, &g2)) <= normal_ulp);
  CHECK(g1.offset == g2.offset);
}
