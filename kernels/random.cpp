/// @file kernels/random.cpp @brief Device-generic random fill entry point.
#include "kernels/random.h"

#include "kernels/dispatch.h"

namespace ember::kernels {

void fill_random(Tensor& out, Distribution dist, double a, double b, uint64_t seed, uint64_t offset) {
  EMBER_CHECK(out.is_contiguous() && is_floating(out.dtype()), "fill_random: expected a contiguous floating tensor, got ",
              describe(out));
  EMBER_CHECK(dist != Distribution::Normal || b >= 0, "normal_: std must be >= 0, got ", b);
  EMBER_CHECK(dist != Distribution::Uniform || a <= b, "uniform_: low ", a, " > high ", b);
  if (out.numel() == 0) return;
  require(table_for<RandomKernels>(out.device().type).fill_random, "fill_random", out.device())(out, dist, a, b, seed,
                                                                                               offset);
}

}  // namespace ember::kernels
