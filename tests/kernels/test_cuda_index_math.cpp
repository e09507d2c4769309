/// @file tests/kernels/test_cuda_index_math.cpp @brief The CUDA kernels' index arithmetic on the host, exactly as the kernels compute it: the 32-bit path selection at the 2^31 boundary and FastDivmod against plain division.
//
// Tagged [cuda] (it tests CUDA-backend code, and make mutate runs the [cuda] cases) though it launches
// nothing. Tensors of 2^31 elements cannot be allocated here; the selection that keeps them on the
// 64-bit path is this pure function, checked at its boundary.
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <vector>

#include "kernels/cuda/index_math.h"

using ember::cuda::ChannelOf;
using ember::cuda::FastDivmod;

TEST_CASE("cuda index math: the 32-bit path is chosen exactly when every index fits int32", "[cuda][index]") {
  using ember::cuda::fits_int32_index;
  using ember::cuda::fits_int32_loop;
  const int64_t two31 = int64_t{1} << 31;
  CHECK(fits_int32_index(0));
  CHECK(fits_int32_index(two31 - 1));
  CHECK_FALSE(fits_int32_index(two31));
  CHECK_FALSE(fits_int32_index(int64_t{1} << 40));
  CHECK_FALSE(fits_int32_index(-1));
  // A grid-stride loop also forms i + stride past the end: it must not wrap either.
  CHECK(fits_int32_loop(two31 - 1 - 65536, 65536));
  CHECK_FALSE(fits_int32_loop(two31 - 65536, 65536));
  CHECK_FALSE(fits_int32_loop(two31 + 5, 256));
  CHECK(fits_int32_loop(1000, 1 << 20));
  // The dispatch helper hands the chosen type to the launcher.
  int chosen = 0;
  ember::cuda::with_index_type(fits_int32_index(two31 - 1), [&](auto i) { chosen = sizeof(i); });
  CHECK(chosen == 4);
  ember::cuda::with_index_type(fits_int32_index(two31), [&](auto i) { chosen = sizeof(i); });
  CHECK(chosen == 8);
}

TEST_CASE("cuda index math: FastDivmod equals plain division for every divisor and dividend below 2^31",
          "[cuda][index]") {
  const uint32_t max = INT32_MAX;
  std::vector<uint32_t> divisors{1, 2, 3, 5, 6, 7, 9, 10, 31, 32, 33, 49, 56, 64, 100, 641, 1000, 3136, 4096, 6700417,
                                 (1u << 30) - 1, 1u << 30, (1u << 30) + 1, max - 1, max};
  std::mt19937 rng(7);
  for (int k = 0; k < 200; ++k) divisors.push_back(1 + rng() % max);
  for (int b = 1; b < 31; ++b) divisors.push_back((1u << b) - 1), divisors.push_back((1u << b) + 1);
  for (const uint32_t d : divisors) {
    INFO("divisor " << d);
    const FastDivmod f(d);
    std::vector<uint32_t> ns{0, 1, d - 1, d, d + 1 <= max ? d + 1 : max, max, max - 1, max / d * d, max / d * d - 1};
    for (int k = 0; k < 300; ++k) ns.push_back(rng() % (max + 1u));
    for (int k = 0; k < 50; ++k) ns.push_back(static_cast<uint32_t>(rng() % 64) * d % (max + 1u));
    for (const uint32_t n : ns) {
      if (n > max) continue;
      INFO("dividend " << n);
      REQUIRE(f.div(n) == n / d);
      REQUIRE(f.mod(n) == n % d);
    }
  }
  // The divisor of an empty dimension (never divided by) is built safely as 1.
  CHECK(FastDivmod(0).div(12345) == 12345);
}

TEST_CASE("cuda index math: the 32-bit channel of an element equals the 64-bit one", "[cuda][index]") {
  for (const auto& [s, c] : std::vector<std::pair<int64_t, int64_t>>{{1, 4}, {3136, 64}, {1517, 3}, {1, 1}, {7, 600}}) {
    const ChannelOf<uint32_t> fast(s, c);
    const ChannelOf<int64_t> plain(s, c);
    const int64_t n = s * c * 5;
    for (int64_t i = 0; i < n; i += 1 + n / 5000)
      REQUIRE(static_cast<int64_t>(fast(static_cast<uint32_t>(i))) == plain(i));
  }
}
