/// @file benchmarks/bench_main.h @brief The shared main of the benchmark binaries: strips --table=FILE, runs Google Benchmark with the TableReporter.
#pragma once
#include <functional>

namespace ember::bench {

/// Parses `--table=FILE` (also write the summary table there as Markdown), initializes Google Benchmark
/// with the remaining arguments (rejecting unknown ones), calls `register_all`, runs and prints the table.
/// Returns the process exit status.
int run_benchmarks(int argc, char** argv, const char* program, const std::function<void()>& register_all);

}  // namespace ember::bench
