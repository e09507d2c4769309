/// @file tests/kernels/test_cuda_loss.cpp @brief The CUDA cross-entropy kernels against the CPU backend (also with grids capped at 2 blocks, so blocks loop over rows), and an out-of-range target raising the CPU's error.
//
// Tolerances: both backends sum exp(x - max) in double and take log in double; the CUDA forward reduces
// in a different order: relative 1e-6 on lse and the losses. The backward is expf(x - lse) - onehot times
// the row's gradient, one f32 expf per element: bitwise in the emulator (same libm), 2 ulps of expf plus
// a rounding on a GPU, within relative 1e-5 + absolute 1e-7.
#include <catch2/catch.hpp>

#include "kernels/loss.h"
#include "kernels/transfer.h"
#include "tests/kernels/cuda_test_util.h"

using namespace ember;

namespace {

const TensorOptions kI64{DType::i64, Device::cpu()};

/// Targets (r * 7 + 3) % c for each row, with `bad` replacing the targets at the given rows.
Tensor targets_for(int64_t rows, int64_t c, const std::vector<std::pair<int64_t, int64_t>>& bad = {}) {
  std::vector<int64_t> t(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) t[static_cast<size_t>(r)] = (r * 7 + 3) % c;
  for (const auto& [row, value] : bad) t[static_cast<size_t>(row)] = value;
  return from_vector(t, {rows}, kI64);
}

/// allclose with the failing index in the report.
void check_close(const Tensor& got, const Tensor& want, double rtol, double atol) {
  std::string why;
  const bool ok = test::allclose(got, want, rtol, atol, &why);
  INFO(why);
  CHECK(ok);
}

/// The message of the ember::Error that cross_entropy_forward throws for these inputs ("" if none).
std::string forward_error(const Tensor& logits, const Tensor& targets) {
  const int64_t rows = logits.size(0);
  const TensorOptions opts{DType::f32, logits.device()};
  Tensor losses = empty({rows}, opts), lse = empty({rows}, opts);
  try {
    kernels::cross_entropy_forward(logits, targets, losses, lse);
    kernels::synchronize(logits.device());  // a GPU checks the targets on the device: raised at a host sync
  } catch (const Error& e) {
    return e.message();
  }
  return "";
}

}  // namespace

TEST_CASE("cuda cross-entropy forward and backward match the CPU when blocks loop over rows", "[cuda][loss]") {
  if (!test::cuda_or_warn()) return;
  // [rows, C]: blocks of 32, 128 and 256 threads (the last strides over 1000 classes).
  const std::vector<std::pair<int64_t, int64_t>> shapes{{1, 1}, {33, 31}, {7, 100}, {5, 1000}};
  for (unsigned cap : test::kGridCaps) {
    const test::GridCap grid(cap);
    for (const auto& [rows, c] : shapes) {
      INFO(grid.str() << ", logits [" << rows << ", " << c << "]");
      const Tensor x = test::random_input({rows, c}, 60, -4.0, 4.0), t = targets_for(rows, c);
      Tensor losses = empty({rows}), lse = empty({rows});
      Tensor losses_g = empty({rows}, test::kOnCuda), lse_g = empty({rows}, test::kOnCuda);
      kernels::cross_entropy_forward(x, t, losses, lse);
      kernels::cross_entropy_forward(x.to(test::kCuda), t.to(test::kCuda), losses_g, lse_g);
      check_close(lse_g, lse, 1e-6, 0.0);
      check_close(losses_g, losses, 1e-6, 1e-7);

      const Tensor gl = test::random_input({rows}, 61);
      Tensor gx = empty({rows, c}), gx_g = empty({rows, c}, test::kOnCuda);
      kernels::cross_entropy_backward(x, t, lse, gl, gx);
      kernels::cross_entropy_backward(x.to(test::kCuda), t.to(test::kCuda), lse.to(test::kCuda), gl.to(test::kCuda),
                                      gx_g);
      check_close(gx_g, gx, 1e-5, 1e-7);
    }
  }
}

TEST_CASE("cuda cross-entropy rejects an out-of-range target with the CPU's error", "[cuda][loss]") {
  if (!test::cuda_or_warn()) return;
  // Bad targets in rows handled by different blocks and, under a cap of 2, by a block's later rows.
  const int64_t rows = 9, c = 40;
  const Tensor x = test::random_input({rows, c}, 62);
  for (unsigned cap : test::kGridCaps) {
    const test::GridCap grid(cap);
    for (const auto& bad : std::vector<std::vector<std::pair<int64_t, int64_t>>>{
             {{2, c}}, {{8, -1}}, {{5, c + 7}, {6, -3}}, {{0, 1000000}}}) {
      const Tensor t = targets_for(rows, c, bad);
      const std::string cpu = forward_error(x, t);
      INFO(grid.str() << "; on the CPU: " << cpu);
      REQUIRE_FALSE(cpu.empty());
      // The CPU's message (the first bad target, all counted), then where the device found it.
      const std::string gpu = forward_error(x.to(test::kCuda), t.to(test::kCuda));
      CHECK(gpu.rfind(cpu, 0) == 0);
      CHECK_THAT(gpu, Catch::Contains("found on cuda:0") && Catch::Contains("next host synchronization"));
    }
    CHECK(forward_error(x.to(test::kCuda), targets_for(rows, c).to(test::kCuda)).empty());
  }
}

TEST_CASE("cuda cross-entropy with ignore_index and label smoothing matches the CPU; the count is exact",
          "[cuda][loss]") {
  if (!test::cuda_or_warn()) return;
  // Every third row ignored (ignore_index 5, a valid class, and the default -100), eps 0 / 0.1 / 1.
  const int64_t rows = 37, c = 70;
  std::vector<int64_t> tv(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) tv[static_cast<size_t>(r)] = r % 3 == 0 ? (r % 2 ? 5 : -100) : (r * 11) % c;
  const Tensor x = test::random_input({rows, c}, 63, -4.0, 4.0), t = from_vector(tv, {rows}, kI64);
  const Tensor gl = test::random_input({rows}, 64);
  for (unsigned cap : test::kGridCaps) {
    const test::GridCap grid(cap);
    for (const int64_t ignore : {int64_t{5}, int64_t{-100}}) {
      for (const double eps : {0.0, 0.1, 1.0}) {
        INFO(grid.str() << ", ignore_index " << ignore << ", label_smoothing " << eps);
        // A -100 target is invalid unless it is the ignore_index: use class 0 there when ignoring 5.
        std::vector<int64_t> tv2 = tv;
        for (int64_t& v : tv2) v = v == -100 && ignore != -100 ? 0 : v;
        const Tensor t2 = from_vector(tv2, {rows}, kI64);
        const kernels::CrossEntropyParams p{ignore, eps};
        Tensor losses = empty({rows}), lse = empty({rows});
        Tensor losses_g = empty({rows}, test::kOnCuda), lse_g = empty({rows}, test::kOnCuda);
        kernels::cross_entropy_forward(x, t2, losses, lse, p);
        kernels::cross_entropy_forward(x.to(test::kCuda), t2.to(test::kCuda), losses_g, lse_g, p);
        check_close(losses_g, losses, 1e-6, 1e-7);
        Tensor gx = empty({rows, c}), gx_g = empty({rows, c}, test::kOnCuda);
        kernels::cross_entropy_backward(x, t2, lse, gl, gx, p);
        kernels::cross_entropy_backward(x.to(test::kCuda), t2.to(test::kCuda), lse_g, gl.to(test::kCuda), gx_g, p);
        check_close(gx_g, gx, 1e-5, 1e-7);
        int64_t kept = 0;
        for (int64_t v : tv2) kept += v != ignore;
        Tensor count = empty({1}, TensorOptions{DType::i64, test::kCuda});
        kernels::count_not_ignored(t2.to(test::kCuda), ignore, count);
        CHECK(count.to(Device::cpu()).to_vector<int64_t>()[0] == kept);
      }
    }
  }
  // Ignored rows have loss 0 and gradient 0 exactly (not small).
  Tensor losses_g = empty({rows}, test::kOnCuda), lse_g = empty({rows}, test::kOnCuda);
  kernels::cross_entropy_forward(x.to(test::kCuda), t.to(test::kCuda), losses_g, lse_g, {-100, 0.1});
  CHECK(losses_g.to(Device::cpu()).to_vector<float>()[0] == 0.0f);
}
