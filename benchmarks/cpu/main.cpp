/// @file benchmarks/cpu/main.cpp @brief ember-bench: the CPU kernel microbenchmarks, each rate compared with the CPU's peaks measured in the same run.
#include "benchmarks/bench_main.h"
#include "benchmarks/cpu/cpu_bench.h"

int main(int argc, char** argv) {
  using namespace ember::bench::cpu;
  return ember::bench::run_benchmarks(argc, argv, "ember-bench", [] {
    register_peak();
    register_accumulate();
    register_optimizer();
    register_batchnorm();
    register_loss();
    register_gemm();
  });
}
