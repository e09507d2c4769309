/// @file benchmarks/bench_main.cpp @brief run_benchmarks: argument handling and the reporter shared by ember-bench and ember-bench-gpu.
#include "benchmarks/bench_main.h"

#include <benchmark/benchmark.h>

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "benchmarks/table_reporter.h"

namespace ember::bench {

int run_benchmarks(int argc, char** argv, const char* program, const std::function<void()>& register_all) {
  std::string table;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--table=", 0) == 0)
      table = a.substr(8);
    else
      args.push_back(argv[i]);
  }
  int n = static_cast<int>(args.size());
  benchmark::Initialize(&n, args.data());
  if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 2;
  try {
    register_all();
    TableReporter reporter(table);
    benchmark::RunSpecifiedBenchmarks(&reporter);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", program, e.what());
    return 1;
  }
  benchmark::Shutdown();
  return 0;
}

}  // namespace ember::bench
