/// @file benchmarks/cpu/main.cpp @brief ember-bench: the CPU kernel microbenchmarks, each rate compared with the CPU's peaks measured in the same run.
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <omp.h>

#include <string>

#include "benchmarks/bench_main.h"
#include "benchmarks/cpu/cpu_bench.h"
#include "ops/runtime.h"

namespace {

/// One thread count for every row: OpenMP's (OMP_NUM_THREADS, default one per core), which the peaks'
/// loops and Ember's kernels use, is given to OpenBLAS too (whatever OPENBLAS_NUM_THREADS says), so a
/// GEMM's percentage of the FMA peak compares runs on the same threads. The header shows it.
void use_one_thread_count() {
  const int threads = omp_get_max_threads();
  openblas_set_num_threads(threads);
  benchmark::AddCustomContext("threads (OpenMP and OpenBLAS)", std::to_string(threads));
  if (const std::string core = ember::cpu_blas_core(); !core.empty()) benchmark::AddCustomContext("CPU GEMMs", core);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ember::bench::cpu;
  return ember::bench::run_benchmarks(argc, argv, "ember-bench", [] {
    use_one_thread_count();
    register_peak();
    register_accumulate();
    register_optimizer();
    register_batchnorm();
    register_loss();
    register_gemm();
    register_layers();
  });
}
