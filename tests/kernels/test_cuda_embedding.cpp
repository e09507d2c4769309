/// @file tests/kernels/test_cuda_embedding.cpp @brief The CUDA embedding kernels against the CPU backend, bitwise: the gather, the sort-based backward with repeated indices (tile-only and multi-launch sorts, grid caps), run twice; an out-of-range index raising the CPU's error.
//
// Tolerances: none. The forward copies rows. The backward sums each row's positions in position order
// in double and rounds once on both backends (no FMA: additions only), so CUDA equals the CPU bit for
// bit, on a GPU as in the emulator.
#include <catch2/catch.hpp>

#include "kernels/embedding.h"
#include "kernels/transfer.h"
#include "tests/kernels/cuda_test_util.h"

using namespace ember;

namespace {

const TensorOptions kI64{DType::i64, Device::cpu()};

/// n indices in [0, num) with heavy repeats: every third is row (i % 3) (hot rows), the others spread.
Tensor hot_indices(int64_t n, int64_t num) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = i % 3 == 0 ? (i / 3) % 3 : (i * 7919 + 13) % num;
  return from_vector(v, {n}, kI64);
}

/// grad_weight after adding the backward of (indices, g) into `base` (a copy), on g's device.
Tensor backward_into(const Tensor& base, const Tensor& indices, const Tensor& g) {
  Tensor gw = base.to(g.device()).clone();
  kernels::embedding_backward(indices.to(g.device()), g, gw);
  return gw.to(Device::cpu());
}

std::string forward_error(const Tensor& indices, const Tensor& weight) {
  Tensor out = empty({indices.numel(), weight.size(1)}, TensorOptions{DType::f32, weight.device()});
  try {
    kernels::embedding_forward(indices, weight, out);
    kernels::synchronize(weight.device());  // a GPU checks the indices on the device: raised at a host sync
  } catch (const Error& e) {
    return e.message();
  }
  return "";
}

}  // namespace

TEST_CASE("cuda embedding forward and backward equal the CPU bitwise, with repeated indices, twice",
          "[cuda][embedding]") {
  if (!test::cuda_or_warn()) return;
  // (n, num, dim): a single index; a sort within one tile; 3000 and 5000 indices (sorts over 2 and 4
  // tiles of 2048 keys with global merge steps); dim 300 > 256 threads (blocks stride over the row).
  const std::vector<std::tuple<int64_t, int64_t, int64_t>> shapes{
      {1, 4, 3}, {77, 10, 33}, {3000, 50, 5}, {5000, 4000, 2}, {40, 9, 300}};
  for (unsigned cap : test::kGridCaps) {
    const test::GridCap grid(cap);
    for (const auto& [n, num, dim] : shapes) {
      INFO(grid.str() << ", n " << n << ", weight [" << num << ", " << dim << "]");
      const Tensor idx = hot_indices(n, num), w = test::random_input({num, dim}, 70, -2, 2);
      Tensor y = empty({n, dim}), y_g = empty({n, dim}, test::kOnCuda);
      kernels::embedding_forward(idx, w, y);
      kernels::embedding_forward(idx.to(test::kCuda), w.to(test::kCuda), y_g);
      CHECK(y_g.to(Device::cpu()).to_vector<float>() == y.to_vector<float>());

      // Into a non-zero gradient (the in-place accumulation of a second micro-batch).
      const Tensor g = test::random_input({n, dim}, 71), base = test::random_input({num, dim}, 72);
      const auto want = backward_into(base, idx, g).to_vector<float>();
      const auto first = backward_into(base, idx, g.to(test::kCuda)).to_vector<float>();
      CHECK(first == want);
      CHECK(backward_into(base, idx, g.to(test::kCuda)).to_vector<float>() == first);  // a second run: same bits
    }
  }
}

TEST_CASE("cuda embedding rejects an out-of-range index with the CPU's error", "[cuda][embedding]") {
  if (!test::cuda_or_warn()) return;
  const Tensor w = test::random_input({6, 4}, 73);
  for (unsigned cap : test::kGridCaps) {
    const test::GridCap grid(cap);
    for (const std::vector<int64_t>& v : std::vector<std::vector<int64_t>>{{0, 6, 1}, {5, 2, -1}, {9, -4, 100}}) {
      const Tensor idx = from_vector(v, {3}, kI64);
      const std::string cpu = forward_error(idx, w);
      INFO(grid.str() << "; on the CPU: " << cpu);
      REQUIRE_FALSE(cpu.empty());
      const std::string gpu = forward_error(idx.to(test::kCuda), w.to(test::kCuda));
      CHECK(gpu.rfind(cpu, 0) == 0);
      CHECK_THAT(gpu, Catch::Contains("found on cuda:0") && Catch::Contains("next host synchronization"));
    }
    CHECK(forward_error(from_vector(std::vector<int64_t>{5, 0}, {2}, kI64).to(test::kCuda), w.to(test::kCuda)).empty());
  }
  // The backward skips an out-of-range index (raised by the forward at the next synchronization) rather
  // than writing outside the gradient: the valid rows still get their sums.
  const Tensor idx = from_vector(std::vector<int64_t>{2, 77, 2}, {3}, kI64), g = test::random_input({3, 4}, 74);
  const auto cpu = backward_into(zeros({6, 4}), idx, g).to_vector<float>();
  CHECK(backward_into(zeros({6, 4}), idx, g.to(test::kCuda)).to_vector<float>() == cpu);
  CHECK(cpu[2 * 4] == g.to_vector<float>()[0] + g.to_vector<float>()[8]);
}
