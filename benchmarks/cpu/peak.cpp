/// @file benchmarks/cpu/peak.cpp @brief The CPU's measured peaks: STREAM triads at L2 / L3 / DRAM sizes and an AVX2-FMA throughput loop.
#include <benchmark/benchmark.h>
#include <immintrin.h>
#include <omp.h>

#include <vector>

#include "benchmarks/cpu/cpu_bench.h"
#include "benchmarks/bench_util.h"
#include "benchmarks/table_reporter.h"
#include "core/tensor.h"

namespace ember::bench::cpu {

std::string peak_for_working_set(double working_set_bytes) {
  if (working_set_bytes <= 1.5 * double(3 * 4 * kTriadL2)) return "peak/triad_l2";
  if (working_set_bytes <= 2.0 * double(3 * 4 * kTriadL3)) return "peak/triad_l3";
  return "peak/triad_dram";
}

std::vector<Tensor> make_tensors(const ParamList& l, double value) {
  std::vector<Tensor> ts;
  for (const Shape& s : l.shapes) ts.push_back(full(s, value));
  return ts;
}

namespace {

/// STREAM triad a = b + k * c over n floats, on every OpenMP thread (the same loop shape as the library's
/// kernels: `omp parallel for simd`, static schedule). STREAM counts 12 bytes per element (3 arrays;
/// the write-allocate read of `a` is not counted).
void triad(benchmark::State& s, int64_t n) {
  std::vector<float> a(static_cast<size_t>(n)), b(static_cast<size_t>(n), 1.0f), c(static_cast<size_t>(n), 2.0f);
  float* __restrict__ pa = a.data();
  const float* __restrict__ pb = b.data();
  const float* __restrict__ pc = c.data();
  const float k = 0.5f;
  for (auto _ : s) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) pa[i] = pb[i] + k * pc[i];
    benchmark::DoNotOptimize(pa);
    benchmark::ClobberMemory();
  }
  set_bandwidth(s, 12.0 * double(n), "");
  s.SetLabel(bench_name("STREAM triad, ", 3 * 4 * n / 1024, " KiB"));
}

constexpr int kFmaChains = 12;         // independent accumulators: > latency (4) x FMA ports (2)
constexpr int64_t kFmaIters = 1 << 20;  // per thread per benchmark iteration

__attribute__((target("avx2,fma"))) float fma_loop(float seed) {
  __m256 acc[kFmaChains];
  for (int j = 0; j < kFmaChains; ++j) acc[j] = _mm256_set1_ps(seed + float(j));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int64_t i = 0; i < kFmaIters; ++i)
    for (int j = 0; j < kFmaChains; ++j) acc[j] = _mm256_fmadd_ps(acc[j], a, b);
  __m256 sum = acc[0];
  for (int j = 1; j < kFmaChains; ++j) sum = _mm256_add_ps(sum, acc[j]);
  float out[8];
  _mm256_storeu_ps(out, sum);
  return out[0];
}

/// Peak f32 FLOP/s: 8-wide FMAs (2 FLOPs per lane) on every OpenMP thread, register-resident.
void fma_peak(benchmark::State& s) {
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    s.SkipWithError("this CPU has no AVX2/FMA: no FMA peak");
    return;
  }
  int threads = 1;
  for (auto _ : s) {
    float r = 0.0f;
#pragma omp parallel reduction(+ : r)
    {
#pragma omp master
      threads = omp_get_num_threads();
      r += fma_loop(1.0f);
    }
    benchmark::DoNotOptimize(r);
  }
  s.counters["FLOP/s"] = benchmark::Counter(double(threads) * double(kFmaIters) * kFmaChains * 8 * 2 *
                                                double(s.iterations()),
                                            benchmark::Counter::kIsRate);
  s.SetLabel(bench_name("AVX2 FMA, ", threads, " threads"));
}

}  // namespace

void register_peak() {
  add("peak/triad_l2", triad, kTriadL2)->Unit(benchmark::kMicrosecond);
  add("peak/triad_l3", triad, kTriadL3)->Unit(benchmark::kMicrosecond);
  add("peak/triad_dram", triad, kTriadDram)->Unit(benchmark::kMillisecond);
  add("peak/fma", fma_peak)->Unit(benchmark::kMillisecond);
}

}  // namespace ember::bench::cpu
