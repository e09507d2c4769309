/// @file benchmarks/gpu/peak.cpp @brief The GPU's measured peaks: device-to-device copy bandwidth and cuBLAS SGEMM throughput.
#include "benchmarks/gpu/baselines.h"
#include "benchmarks/gpu/gpu_bench.h"
#include "benchmarks/table_reporter.h"

namespace ember::bench::gpu {
namespace {

/// cudaMemcpyAsync device to device of 1 GiB: reads 1 GiB and writes 1 GiB (2 x bytes moved).
void d2d_copy(benchmark::State& s) {
  constexpr int64_t n = int64_t{1} << 28;  // floats
  Tensor src = full({n}, 1.0, on_gpu()), dst = empty({n}, on_gpu());
  time_calls(
      s,
      [&](int64_t) {
        EMBER_BENCH_CUDA(cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(), size_t(n) * 4, cudaMemcpyDeviceToDevice,
                                         ember::cuda::stream()));
      },
      5);
  set_bandwidth(s, 8.0 * double(n), "");
  s.SetLabel("cudaMemcpyAsync D2D, 1 GiB");
}

/// cuBLAS SGEMM, square 8192, FP32 (the handle's default math mode: no TF32): 2 n^3 FLOPs.
void sgemm_peak(benchmark::State& s) {
  constexpr int n = 8192;
  Tensor a = full({n, n}, 0.001, on_gpu()), b = full({n, n}, 0.001, on_gpu()), c = empty({n, n}, on_gpu());
  const float one = 1.0f, zero = 0.0f;
  time_calls(
      s,
      [&](int64_t) {
        EMBER_BENCH_CUBLAS(cublasSgemm(cublas(), CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one,
                                       static_cast<const float*>(a.data_ptr()), n,
                                       static_cast<const float*>(b.data_ptr()), n, &zero,
                                       static_cast<float*>(c.data_ptr()), n));
      },
      3);
  set_flops(s, 2.0 * double(n) * n * n, "");
  s.SetLabel("cublasSgemm 8192^3 FP32");
}

}  // namespace

void register_peak() {
  add_gpu("peak/d2d_copy", d2d_copy);
  add_gpu("peak/cublas_sgemm", sgemm_peak);
}

}  // namespace ember::bench::gpu
