/// @file tests/emulated/test_embedding_schedules.cpp @brief The sort-based CUDA embedding backward gives the same bits under every emulator schedule and grid cap, in the documented number of launches.
#include <catch2/catch.hpp>

#include <vector>

#include "kernels/cuda/emulator/runtime.h"
#include "kernels/embedding.h"
#include "tests/kernels/cuda_test_util.h"

using namespace ember;

namespace {

class ScheduleScope {
 public:
  ScheduleScope() : saved_(emu::schedule()) {}
  ~ScheduleScope() { emu::set_schedule(saved_); }

 private:
  emu::Schedule saved_;
};

}  // namespace

TEST_CASE("cuda embedding backward: the same bits under every schedule; launches as documented",
          "[emulated][embedding][cuda]") {
  const ScheduleScope restore;
  // 2100 positions over 5 rows (hot rows of ~420 repeats): 4096 padded keys, 2 tiles of 2048.
  const int64_t n = 2100, num = 5, dim = 3;
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = (i * i + 3 * i) % num;
  const Tensor idx = from_vector(v, {n}, TensorOptions{DType::i64, test::kCuda});
  const Tensor g = test::random_input({n, dim}, 80, -1, 1).to(test::kCuda);
  auto run = [&] {
    Tensor gw = zeros({num, dim}, test::kOnCuda);
    kernels::embedding_backward(idx, g, gw);
    return gw.to_vector<float>();
  };
  emu::set_schedule(emu::Schedule::forward());
  emu::reset_counters();
  const auto want = run();
  // The zero fill of the gradient, then: keys, the tile sort (k <= 2048), k = 4096 (1 global step + the
  // tiles), the row sums.
  CHECK(emu::counters().kernel_launches == 1 + 1 + 1 + 2 + 1);
  for (const emu::Schedule s : {emu::Schedule::reverse(), emu::Schedule::random(1)}) {
    emu::set_schedule(s);
    for (unsigned cap : {0u, 3u}) {
      const test::GridCap grid(cap);
      INFO(grid.str() << ", schedule order " << static_cast<int>(s.order) << " seed " << s.seed);
      CHECK(run() == want);
    }
  }
}
