/// @file benchmarks/gpu/gpu_bench.h @brief What the GPU benchmark files share: CUDA-event timing on Ember's stream, rotating operand sets, the copy peak, registration hooks.
#pragma once
#include <cuda_runtime.h>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "benchmarks/param_lists.h"
#include "core/tensor.h"

namespace ember::cuda {
cudaStream_t stream();  // kernels/cuda/runtime.cu: the stream all Ember work is queued on
}

namespace ember::bench::gpu {

/// Throws ember::Error naming `what` and the CUDA error when e is not cudaSuccess.
void check(cudaError_t e, const char* what);
#define EMBER_BENCH_CUDA(expr) ::ember::bench::gpu::check((expr), #expr)

/// The peak every bandwidth row is compared with: a device-to-device cudaMemcpyAsync (reads + writes).
inline const std::string kPeakCopy = "peak/d2d_copy";
/// The compute reference of the GEMM rows: cuBLAS SGEMM 8192^3 (FP32, default math mode).
inline const std::string kPeakSgemm = "peak/cublas_sgemm";

inline const Device kGpu = Device::cuda(0);
inline TensorOptions on_gpu() { return TensorOptions{}.set_device(kGpu); }

/// Size of device 0's L2 cache in bytes.
int64_t l2_bytes();
/// How many copies of a `working_set_bytes` operand set to rotate through so a call never finds its
/// operands in L2 left there by the previous call: ceil(4 * L2 / working set), in [1, 1024], and at most
/// 2 GiB of copies in all. (Sets smaller than L2 / 1024 stay cache-resident: such calls are launch-bound.)
int rotations(double working_set_bytes);

/// Times `f(k)` (k = 0, 1, 2, ...: the call's index, for picking the operand set k % rotations) with CUDA
/// events on Ember's stream: 3 warm-up calls, then per benchmark iteration `inner` calls between two
/// events; each iteration reports (elapsed / inner) through SetIterationTime, so rows are per call.
/// Register the benchmark with UseManualTime().
void time_calls(benchmark::State& s, const std::function<void(int64_t)>& f, int inner = 10);

/// `count` sets of tensors shaped as the list, on the GPU, filled with `value`.
std::vector<std::vector<Tensor>> make_sets(const ParamList& l, int count, double value);

/// Registers fn(state, args...) under `name` with manual (CUDA event) time; an exception marks the
/// row as skipped with its message.
template <class F, class... A>
benchmark::internal::Benchmark* add_gpu(const std::string& name, F fn, A... args) {
  return benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& s) {
           try {
             fn(s, args...);
           } catch (const std::exception& e) {
             s.SkipWithError(e.what());
           }
         })
      ->UseManualTime()
      ->Unit(benchmark::kMicrosecond);
}

void register_peak();
void register_accumulate();
void register_optimizer();
void register_batchnorm();
void register_loss_gemm();

}  // namespace ember::bench::gpu
