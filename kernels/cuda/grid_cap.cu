/// @file kernels/cuda/grid_cap.cu @brief The one source of the CUDA launchers' grid caps (common.cuh's grid_cap) and its test-only override (kernels/cuda/testing.h).
#include <atomic>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/testing.h"

namespace ember::cuda {
namespace {

std::atomic<unsigned> test_cap{0};  // 0: no override

unsigned get_test_cap() { return test_cap.load(std::memory_order_relaxed); }
void set_test_cap(unsigned blocks) { test_cap.store(blocks, std::memory_order_relaxed); }

}  // namespace

unsigned grid_cap(unsigned limit) {
  const unsigned t = get_test_cap();
  return t != 0 && t < limit ? t : limit;
}

unsigned loop_grid_cap() { return grid_cap(static_cast<unsigned>(multiprocessor_count()) * 8u); }

const kernels::Registrar grid_cap_registrar([] {
  testing::GridCapHooks& h = testing::grid_cap_hooks();
  h.get = get_test_cap;
  h.set = set_test_cap;
});

}  // namespace ember::cuda
