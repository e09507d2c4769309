/// @file benchmarks/cpu/peak.cpp @brief The CPU's measured peaks: STREAM triads at L2 / L3 / DRAM sizes and the FMA throughput of the widest vector ISA (AVX-512, else AVX2) and of AVX2.
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

// The FMA throughput loops: kFmaChains independent accumulators per thread, more than the FMA latency
// (4 cycles) times the FMA ports (2) so that every port issues each cycle; all operands stay in
// registers (12 accumulators + 2 constants fit AVX2's 16 ymm and AVX-512's 32 zmm registers). A CPU
// with one 512-bit FMA port (some Xeon Silver / Bronze, client parts) shows the AVX-512 loop at the
// AVX2 loop's rate: that is what measuring, rather than assuming, is for.
constexpr int kFmaChains = 12;
constexpr int64_t kFmaIters = 1 << 20;  // per thread per benchmark iteration

__attribute__((target("avx2,fma"))) float fma_loop_avx2(float seed) {
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

__attribute__((target("avx512f"))) float fma_loop_avx512(float seed) {
  __m512 acc[kFmaChains];
  for (int j = 0; j < kFmaChains; ++j) acc[j] = _mm512_set1_ps(seed + float(j));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int64_t i = 0; i < kFmaIters; ++i)
    for (int j = 0; j < kFmaChains; ++j) acc[j] = _mm512_fmadd_ps(acc[j], a, b);
  __m512 sum = acc[0];
  for (int j = 1; j < kFmaChains; ++j) sum = _mm512_add_ps(sum, acc[j]);
  float out[16];  // not _mm512_reduce_add_ps: g++ 12 warns about its undefined upper half (-Wuninitialized)
  _mm512_storeu_ps(out, sum);
  return out[0];
}

/// One FMA instruction set: its name for the label, its f32 lanes, its loop and whether this CPU runs it.
struct FmaIsa {
  const char* name;
  int lanes;
  float (*loop)(float);
  bool (*supported)();
};

const FmaIsa kAvx2{"AVX2 FMA", 8, fma_loop_avx2,
                   [] { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }};
const FmaIsa kAvx512{"AVX-512 FMA", 16, fma_loop_avx512, [] { return __builtin_cpu_supports("avx512f") != 0; }};

/// The widest FMA this CPU has (AVX-512, else AVX2 + FMA), or null.
const FmaIsa* widest_fma() {
  if (kAvx512.supported()) return &kAvx512;
  if (kAvx2.supported()) return &kAvx2;
  return nullptr;
}

/// Peak f32 FLOP/s of one ISA: its FMA loop on every OpenMP thread (as many as the GEMMs and layers
/// of this run use: OMP_NUM_THREADS, default one per core), 2 FLOPs per lane and FMA.
void fma_peak(benchmark::State& s, const FmaIsa* isa) {
  if (isa == nullptr || !isa->supported()) {
    s.SkipWithError(isa ? bench_name("this CPU has no ", isa->name, ": no FMA peak for it").c_str()
                        : "this CPU has neither AVX-512 nor AVX2 + FMA: no FMA peak");
    return;
  }
  int threads = 1;
  for (auto _ : s) {
    float r = 0.0f;
#pragma omp parallel reduction(+ : r)
    {
#pragma omp master
      threads = omp_get_num_threads();
      r += isa->loop(1.0f);
    }
    benchmark::DoNotOptimize(r);
  }
  const double flops_per_iter = double(threads) * double(kFmaIters) * kFmaChains * isa->lanes * 2;
  s.counters["FLOP/s"] = benchmark::Counter(flops_per_iter * double(s.iterations()), benchmark::Counter::kIsRate);
  s.SetLabel(bench_name(isa->name, ", ", threads, threads == 1 ? " thread" : " threads"));
}

}  // namespace

void register_peak() {
  add("peak/triad_l2", triad, kTriadL2)->Unit(benchmark::kMicrosecond);
  add("peak/triad_l3", triad, kTriadL3)->Unit(benchmark::kMicrosecond);
  add("peak/triad_dram", triad, kTriadDram)->Unit(benchmark::kMillisecond);
  add(kPeakFma, fma_peak, widest_fma())->Unit(benchmark::kMillisecond);
  add("peak/fma_avx2", fma_peak, &kAvx2)->Unit(benchmark::kMillisecond);
}

}  // namespace ember::bench::cpu
