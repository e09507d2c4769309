/// @file benchmarks/table_reporter.h @brief Google Benchmark reporter that prints (and optionally writes as Markdown) one table of rates and their fraction of the machine's measured peak.
#pragma once
#include <benchmark/benchmark.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace ember::bench {

/// Peak rows are benchmarks named "peak/<what>"; a row refers to its peak through its label "vs peak/<what>".
/// Sets the bytes this iteration moved (the kernel's "must move" DRAM bytes, docs/kernels.md) and the peak
/// row to compare the rate with.
void set_bandwidth(benchmark::State& s, double bytes_per_iter, const std::string& peak);
/// Sets the floating-point operations of one iteration (counter "FLOP/s") and the peak row.
void set_flops(benchmark::State& s, double flops_per_iter, const std::string& peak);

/// The console output of Google Benchmark, then at Finalize() a summary table: one row per benchmark
/// (the median when --benchmark_repetitions > 1), its time per iteration, its rate (GB/s or GFLOP/s) and
/// the percentage of the peak row named in its label, measured in the same run; a row that names no peak
/// (a peak row) shows its label in that column instead. Rows appear in registration order, also with
/// --benchmark_enable_random_interleaving (which spreads each row's repetitions, the peaks' included,
/// over the run: on a shared machine the peak then sees the same load as the rows compared with it).
class TableReporter : public benchmark::ConsoleReporter {
 public:
  /// markdown_path: also write the table there as Markdown (empty: only print it).
  explicit TableReporter(std::string markdown_path = {});
  void ReportRuns(const std::vector<Run>& reports) override;
  void Finalize() override;

 private:
  struct Row {
    std::string name, peak, unit;  // unit: "GB/s" or "GFLOP/s"
    std::string note;              // the label of a row that names no peak (a peak row's: what it ran)
    double seconds = 0, rate = 0;  // per iteration; bytes/s or FLOP/s
    bool median = false;
    std::pair<int64_t, int64_t> order;  // (family, instance): the table lists rows in registration order
  };
  std::string markdown_path_;
  std::vector<std::string> order_;
  std::map<std::string, Row> rows_;
};

}  // namespace ember::bench
