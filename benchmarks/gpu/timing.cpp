/// @file benchmarks/gpu/timing.cpp @brief CUDA-event timing of benchmark calls on Ember's stream, rotation counts from the L2 size, operand sets.
#include <algorithm>
#include <cmath>

#include "benchmarks/gpu/gpu_bench.h"
#include "core/error.h"

namespace ember::bench::gpu {

void check(cudaError_t e, const char* what) {
  EMBER_CHECK(e == cudaSuccess, what, " failed: ", cudaGetErrorName(e), " (", cudaGetErrorString(e), ")");
}

int64_t l2_bytes() {
  static const int64_t bytes = [] {
    int v = 0;
    EMBER_BENCH_CUDA(cudaDeviceGetAttribute(&v, cudaDevAttrL2CacheSize, 0));
    return static_cast<int64_t>(v);
  }();
  return bytes;
}

int rotations(double working_set_bytes) {
  const double ws = std::max(working_set_bytes, 1.0);
  double r = std::ceil(4.0 * double(l2_bytes()) / ws);
  r = std::min(r, std::floor(2.0 * 1024 * 1024 * 1024 / ws));
  return static_cast<int>(std::clamp(r, 1.0, 1024.0));
}

namespace {

/// CUDA events created and destroyed with the timing loop.
struct EventPair {
  cudaEvent_t start = nullptr, stop = nullptr;
  EventPair() {
    EMBER_BENCH_CUDA(cudaEventCreate(&start));
    EMBER_BENCH_CUDA(cudaEventCreate(&stop));
  }
  ~EventPair() {
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
  }
  EventPair(const EventPair&) = delete;
  EventPair& operator=(const EventPair&) = delete;
};

}  // namespace

void time_calls(benchmark::State& s, const std::function<void(int64_t)>& f, int inner) {
  const cudaStream_t st = ember::cuda::stream();
  EventPair ev;
  int64_t k = 0;
  for (int i = 0; i < 3; ++i) f(k++);
  EMBER_BENCH_CUDA(cudaStreamSynchronize(st));
  for (auto _ : s) {
    EMBER_BENCH_CUDA(cudaEventRecord(ev.start, st));
    for (int i = 0; i < inner; ++i) f(k++);
    EMBER_BENCH_CUDA(cudaEventRecord(ev.stop, st));
    EMBER_BENCH_CUDA(cudaEventSynchronize(ev.stop));
    float ms = 0.0f;
    EMBER_BENCH_CUDA(cudaEventElapsedTime(&ms, ev.start, ev.stop));
    s.SetIterationTime(double(ms) / 1e3 / double(inner));
  }
}

std::vector<std::vector<Tensor>> make_sets(const ParamList& l, int count, double value) {
  std::vector<std::vector<Tensor>> sets(static_cast<size_t>(count));
  for (auto& set : sets)
    for (const Shape& sh : l.shapes) set.push_back(full(sh, value, on_gpu()));
  return sets;
}

}  // namespace ember::bench::gpu
