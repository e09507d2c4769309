/// @file tests/emulated/test_bn_schedules.cpp @brief The two-stage CUDA batch-norm reductions give the same bits under every emulator schedule (the order of warps, lanes and blocks), and a channel split over many blocks costs two launches per reduction.
#include <catch2/catch.hpp>

#include <vector>

#include "kernels/batchnorm.h"
#include "kernels/cuda/emulator/runtime.h"
#include "tests/harness/op_cases.h"
#include "tests/kernels/cuda_test_util.h"

using namespace ember;

namespace {

/// Restores the emulator's schedule when it goes out of scope.
class ScheduleScope {
 public:
  ScheduleScope() : saved_(emu::schedule()) {}
  ~ScheduleScope() { emu::set_schedule(saved_); }

 private:
  emu::Schedule saved_;
};

/// mean, var, sum_dy, sum_dy_xhat of x, dy on the emulated device, as host vectors.
std::vector<std::vector<float>> reductions(const Tensor& x, const Tensor& dy) {
  const int64_t c = x.size(1);
  Tensor mean = empty({c}, test::kOnCuda), var = empty({c}, test::kOnCuda);
  Tensor sd = empty({c}, test::kOnCuda), sdx = empty({c}, test::kOnCuda);
  kernels::batch_norm_stats(x, mean, var);
  kernels::batch_norm_backward_reduce(dy, x, mean, var, 1e-5, sd, sdx);
  return {mean.to_vector<float>(), var.to_vector<float>(), sd.to_vector<float>(), sdx.to_vector<float>()};
}

}  // namespace

TEST_CASE("cuda batch-norm reductions split over many blocks give the same bits under every schedule",
          "[emulated][bn][cuda]") {
  const ScheduleScope restore;
  // 29100 values per channel in 14 slices (slices start mid-row); 70000 in 34 (two per merge lane).
  for (const Shape& shape : {Shape{3, 2, 100, 97}, Shape{1, 2, 70000}}) {
    INFO("input " << shape_str(shape));
    const Tensor x = test::random_input(shape, 60, -1.0, 3.0).to(test::kCuda);
    const Tensor dy = test::random_input(shape, 61).to(test::kCuda);
    emu::set_schedule(emu::Schedule::forward());
    emu::reset_counters();
    const auto want = reductions(x, dy);
    // Two stages per reduction: the (channel, slice) blocks, then the per-channel merge.
    CHECK(emu::counters().kernel_launches == 4);
    for (const emu::Schedule s : {emu::Schedule::reverse(), emu::Schedule::random(1)}) {
      emu::set_schedule(s);
      for (unsigned cap : {0u, 3u}) {
        const test::GridCap grid(cap);
        INFO(grid.str() << ", schedule order " << static_cast<int>(s.order) << " seed " << s.seed);
        const auto got = reductions(x, dy);
        for (size_t k = 0; k < want.size(); ++k) CHECK(got[k] == want[k]);  // bitwise: == on floats, no NaN here
      }
    }
  }
}
