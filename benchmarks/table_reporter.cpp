/// @file benchmarks/table_reporter.cpp @brief The summary table of the benchmark binaries: rate per benchmark and its percentage of the peak measured in the same run.
#include "benchmarks/table_reporter.h"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <sstream>

#include "core/safetensors.h"

namespace ember::bench {

namespace {

constexpr const char* kVs = "vs ";

std::string format_time(double seconds) {
  char buf[32];
  if (seconds < 1e-3)
    std::snprintf(buf, sizeof buf, "%.2f us", seconds * 1e6);
  else if (seconds < 1.0)
    std::snprintf(buf, sizeof buf, "%.3f ms", seconds * 1e3);
  else
    std::snprintf(buf, sizeof buf, "%.3f s", seconds);
  return buf;
}

double seconds_per_iter(const benchmark::BenchmarkReporter::Run& r) {
  // GetAdjustedRealTime() is in r.time_unit; GetTimeUnitMultiplier gives units per second.
  return r.GetAdjustedRealTime() / benchmark::GetTimeUnitMultiplier(r.time_unit);
}

}  // namespace

void set_bandwidth(benchmark::State& s, double bytes_per_iter, const std::string& peak) {
  s.SetBytesProcessed(static_cast<int64_t>(bytes_per_iter * static_cast<double>(s.iterations())));
  s.SetLabel(kVs + peak);
}

void set_flops(benchmark::State& s, double flops_per_iter, const std::string& peak) {
  s.counters["FLOP/s"] = benchmark::Counter(flops_per_iter * static_cast<double>(s.iterations()),
                                            benchmark::Counter::kIsRate);
  s.SetLabel(kVs + peak);
}

TableReporter::TableReporter(std::string markdown_path) : markdown_path_(std::move(markdown_path)) {}

void TableReporter::ReportRuns(const std::vector<Run>& reports) {
  ConsoleReporter::ReportRuns(reports);
  for (const Run& r : reports) {
    if (r.error_occurred) continue;
    const bool aggregate = r.run_type == Run::RT_Aggregate;
    if (aggregate && r.aggregate_name != "median") continue;
    const std::string key = r.run_name.str();
    auto it = rows_.find(key);
    if (it != rows_.end() && it->second.median && !aggregate) continue;
    Row row;
    row.name = r.run_name.function_name + (r.run_name.args.empty() ? "" : "/" + r.run_name.args);
    row.median = aggregate;
    row.order = {r.family_index, r.per_family_instance_index};
    row.seconds = seconds_per_iter(r);
    if (r.report_label.rfind(kVs, 0) == 0)
      row.peak = r.report_label.substr(3);
    else
      row.note = r.report_label;  // a peak row's own label: what it ran ("AVX-512 FMA, 2 threads")
    if (auto c = r.counters.find("bytes_per_second"); c != r.counters.end()) {
      row.rate = c->second.value;
      row.unit = "GB/s";
    } else if (auto f = r.counters.find("FLOP/s"); f != r.counters.end()) {
      row.rate = f->second.value;
      row.unit = "GFLOP/s";
    }
    if (it == rows_.end()) order_.push_back(key);
    rows_[key] = row;
  }
}

void TableReporter::Finalize() {
  ConsoleReporter::Finalize();
  std::map<std::string, double> peaks;  // "peak/..." -> rate
  for (const auto& [key, row] : rows_)
    if (row.name.rfind("peak/", 0) == 0) peaks[row.name] = row.rate;

  // Registration order, also when --benchmark_enable_random_interleaving ran the repetitions shuffled.
  std::stable_sort(order_.begin(), order_.end(),
                   [this](const std::string& a, const std::string& b) { return rows_.at(a).order < rows_.at(b).order; });
  std::ostringstream md;
  md << "| benchmark | time/iter | rate | % of peak | peak (peak rows: what ran) |\n|---|---:|---:|---:|---|\n";
  std::printf("\n%-52s %12s %14s %10s  %s\n", "benchmark", "time/iter", "rate", "% of peak", "peak (peak rows: what ran)");
  for (const std::string& key : order_) {
    const Row& row = rows_.at(key);
    char rate[48] = "-", pct[16] = "-";
    if (!row.unit.empty()) std::snprintf(rate, sizeof rate, "%.2f %s", row.rate / 1e9, row.unit.c_str());
    const auto p = peaks.find(row.peak);
    if (p != peaks.end() && p->second > 0) std::snprintf(pct, sizeof pct, "%.1f%%", 100.0 * row.rate / p->second);
    const std::string t = format_time(row.seconds);
    const std::string& last = row.peak.empty() ? row.note : row.peak;
    std::printf("%-52s %12s %14s %10s  %s\n", row.name.c_str(), t.c_str(), rate, pct, last.c_str());
    md << "| " << row.name << " | " << t << " | " << rate << " | " << pct << " | " << last << " |\n";
  }
  std::fflush(stdout);
  if (!markdown_path_.empty()) {
    try {  // its directory is created; the file is written atomically (temp + rename)
      const std::filesystem::path dir = std::filesystem::path(markdown_path_).parent_path();
      if (!dir.empty()) std::filesystem::create_directories(dir);
      write_file_atomically(markdown_path_, md.str());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "ember-bench: could not write the table to %s: %s\n", markdown_path_.c_str(), e.what());
    }
  }
}

}  // namespace ember::bench
