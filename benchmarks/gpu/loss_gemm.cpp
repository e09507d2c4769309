/// @file benchmarks/gpu/loss_gemm.cpp @brief GPU cross-entropy forward / backward and the GEMM path (Ember's gemm = cuBLAS vs the hand-written tiled SGEMM).
#include "benchmarks/bench_util.h"
#include "benchmarks/gpu/gpu_bench.h"
#include "benchmarks/table_reporter.h"
#include "kernels/cuda/backend_info.h"
#include "kernels/dispatch.h"
#include "kernels/loss.h"
#include "kernels/matmul.h"

namespace ember::bench::gpu {
namespace {

struct Logits {
  Tensor logits, targets, losses, lse, grad_losses, grad_logits;
  Logits(int64_t n, int64_t c) {
    std::vector<int64_t> t(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) t[size_t(i)] = (i * 7) % c;
    logits = randn({n, c}, on_gpu());
    targets = from_vector(t, {n}, TensorOptions{}.set_dtype(DType::i64).set_device(kGpu));
    losses = empty({n}, on_gpu());
    lse = empty({n}, on_gpu());
    grad_losses = full({n}, 1.0 / double(n), on_gpu());
    grad_logits = empty({n, c}, on_gpu());
  }
};

/// Forward must move 4NC + 16N bytes, backward 8NC + 20N (docs/kernels.md). The forward copies its
/// 8-byte invalid-target count back to the host (a synchronization per call), as the library does.
void cross_entropy(benchmark::State& s, int64_t n, int64_t c, bool backward) {
  const double ws = (backward ? 8.0 : 4.0) * double(n * c);
  const int r = rotations(ws);
  std::vector<Logits> d;
  for (int i = 0; i < r; ++i) d.emplace_back(n, c);
  for (Logits& l : d) kernels::cross_entropy_forward(l.logits, l.targets, l.losses, l.lse);
  time_calls(s, [&](int64_t k) {
    Logits& l = d[size_t(k % r)];
    if (backward)
      kernels::cross_entropy_backward(l.logits, l.targets, l.lse, l.grad_losses, l.grad_logits);
    else
      kernels::cross_entropy_forward(l.logits, l.targets, l.losses, l.lse);
  });
  set_bandwidth(s, backward ? 8.0 * double(n * c) + 20.0 * double(n) : 4.0 * double(n * c) + 16.0 * double(n),
                kPeakCopy);
}

/// C = A B (square n, f32): Ember's gemm (cuBLAS in the real build) or the hand-written tiled kernel.
void gemm(benchmark::State& s, int64_t n, bool tiled) {
  const auto fn = kernels::table_for<kernels::CudaBackendInfo>(DeviceType::CUDA).tiled_gemm;
  if (tiled && fn == nullptr) {
    s.SkipWithError("the CUDA backend registered no tiled_gemm");
    return;
  }
  Tensor a = randn({n, n}, on_gpu()), b = randn({n, n}, on_gpu()), c = empty({n, n}, on_gpu());
  time_calls(
      s,
      [&](int64_t) {
        if (tiled)
          fn(a, false, b, false, c, 1.0, 0.0);
        else
          kernels::gemm(a, false, b, false, c, 1.0, 0.0);
      },
      n >= 4096 ? 3 : 10);
  set_flops(s, 2.0 * double(n) * double(n) * double(n), kPeakSgemm);
}

}  // namespace

void register_loss_gemm() {
  for (auto [n, c] : {std::pair<int64_t, int64_t>{32, 10}, {4096, 1000}, {65536, 1000}}) {
    add_gpu(bench_name("cross_entropy_forward/", n, "x", c), cross_entropy, n, c, false);
    add_gpu(bench_name("cross_entropy_backward/", n, "x", c), cross_entropy, n, c, true);
  }
  for (int64_t n : {int64_t{512}, int64_t{4096}}) {
    add_gpu(bench_name("gemm/cublas/", n), gemm, n, false);
    add_gpu(bench_name("gemm/tiled/", n), gemm, n, true);
  }
}

}  // namespace ember::bench::gpu
