/// @file examples/ember_train/report.cpp @brief Summary JSON, metrics CSV and the gnuplot loss/accuracy plot.
#include "examples/ember_train/report.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>

#include <unistd.h>

#include "core/error.h"

namespace ember::train {

namespace {

/// The --metrics header; its third column counts the loss terms: "samples", or "tokens" (ember-train-lm).
std::string metrics_header(const std::string& unit) {
  return "step,epoch," + unit + ",loss,lr,grad_norm,skipped,elapsed_s";
}

/// JSON has no NaN/Inf: write them as null.
nlohmann::ordered_json number(double v) { return std::isfinite(v) ? nlohmann::ordered_json(v) : nullptr; }

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

/// gnuplot string literal (single quotes; a quote is doubled).
std::string gp_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

}  // namespace

std::string summary_json(const RunSummary& s) {
  nlohmann::ordered_json j;
  j["device"] = s.device;
  j["world_size"] = s.world_size;
  j["model"] = s.model;
  j["norm"] = s.norm;
  j["bn_stats"] = s.bn_stats;
  j["optimizer"] = s.optimizer;
  j["micro_batch"] = s.micro_batch;
  j["accum"] = s.accum;
  j["effective_batch"] = s.effective_batch;
  j["micro_steps"] = s.micro_steps;
  j["optimizer_steps"] = s.optimizer_steps;
  j["skipped_steps"] = s.skipped_steps;
  j["allreduce_calls"] = s.allreduce_calls;
  j["epochs_completed"] = s.epochs_completed;
  j["train_samples"] = s.train_samples;
  j["test_samples"] = s.test_samples;
  j["final_loss"] = number(s.final_loss);
  j["test_accuracy"] = number(s.test_accuracy);
  j["test_loss"] = number(s.test_loss);
  if (!s.lm) j["samples_per_s"] = number(s.samples_per_s);
  if (s.lm) {
    j["tokens"] = s.lm->tokens;
    j["tokens_per_s"] = number(s.lm->tokens_per_s);
    j["val_loss"] = number(s.lm->val_loss);
    j["unigram_loss"] = number(s.lm->unigram_loss);
    j["layers"] = s.lm->layers;
    j["heads"] = s.lm->heads;
    j["dim"] = s.lm->dim;
    j["block_size"] = s.lm->block_size;
    j["parameters"] = s.lm->parameters;
    j["sample"] = s.lm->sample;
  }
  j["peak_bytes"] = s.peak_bytes;
  j["peak_reserved_bytes"] = s.peak_reserved_bytes;
  j["host_syncs"] = s.host_syncs;
  j["kernel_launches"] = s.kernel_launches;
  j["wall_s"] = number(s.wall_s);
  j["checkpoint"] = s.checkpoint;
  j["metrics"] = s.metrics;
  j["plot"] = s.plot;
  // A generated sample is bytes, not necessarily UTF-8: invalid sequences are written as U+FFFD.
  return j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

std::string metrics_csv(const std::vector<StepRecord>& steps, const std::string& earlier, const std::string& unit) {
  std::ostringstream os;
  os << (earlier.empty() ? metrics_header(unit) + "\n" : earlier);
  os << std::setprecision(9);
  for (const StepRecord& r : steps)
    os << r.step << ',' << r.epoch << ',' << r.samples << ',' << r.loss << ',' << r.lr << ',' << r.grad_norm << ','
       << (r.skipped ? 1 : 0) << ',' << std::setprecision(4) << r.elapsed_s << std::setprecision(9) << '\n';
  return os.str();
}

EarlierMetrics read_earlier_metrics(const std::string& path, int64_t windows, const std::string& unit) {
  EarlierMetrics m;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    EMBER_CHECK(!std::filesystem::exists(path), "--metrics ", path, ": cannot read the file of the run being resumed: ",
                std::strerror(errno));
    return m;
  }
  std::string line;
  const std::string header = metrics_header(unit);
  EMBER_CHECK(std::getline(in, line) && line == header, "--metrics ", path,
              ": exists but is not an ember-train metrics CSV (its first line is not \"", header,
              "\"); a resumed run continues that file: move it away or choose another --metrics file");
  m.text = line + "\n";
  for (int64_t row = 2; std::getline(in, line); ++row) {
    if (line.empty()) continue;
    int64_t step = 0;
    const auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), step);
    EMBER_CHECK(ec == std::errc() && end != line.data() + line.size() && *end == ',', "--metrics ", path, ": line ",
                row, " does not start with an optimizer step number: '", line.substr(0, 80), "'");
    if (m.kept == windows) {
      ++m.dropped;
      continue;
    }
    m.text += line + "\n";
    ++m.kept;
  }
  return m;
}

std::string plot_png(const std::string& png, const std::vector<StepRecord>& steps, const std::vector<EvalRecord>& evals,
                     const std::string& program, bool eval_loss) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0)
    return "gnuplot is not installed (apt-get install gnuplot-nox), so no plot was drawn to " + png;
  if (steps.empty()) return "no optimizer steps were run, so no plot was drawn to " + png;
  namespace fs = std::filesystem;
  const fs::path base = fs::temp_directory_path() / ("ember-plot-" + std::to_string(::getpid()));
  const std::string loss_dat = base.string() + "-loss.dat", acc_dat = base.string() + "-acc.dat",
                    script = base.string() + ".gp";
  {
    std::ofstream l(loss_dat), a(acc_dat), g(script);
    l << std::setprecision(9);
    for (const StepRecord& r : steps)
      if (std::isfinite(r.loss)) l << r.step << ' ' << r.loss << '\n';
    for (const EvalRecord& e : evals) a << e.step << ' ' << (eval_loss ? e.loss : e.accuracy) << '\n';
    g << "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) { set terminal pngcairo size 900,540 noenhanced } "
         "else { set terminal png size 900,540 noenhanced }\n"
      << "set output " << gp_quote(png) << "\n"
      << "set title " << gp_quote(program + (eval_loss ? ": training and validation loss" : ": training loss and test accuracy")) << "\n"
      << "set xlabel 'optimizer step'\nset ylabel "
      << (eval_loss ? "'loss (nats per byte)'" : "'training loss (window mean)'") << "\n";
    if (!eval_loss) g << "set y2label 'test accuracy'\nset y2range [0:1]\nset ytics nomirror\nset y2tics\n";
    g << "set grid\nset key right center\n"
      << "plot " << gp_quote(loss_dat) << " using 1:2 with lines lw 1 title 'loss'";
    if (!evals.empty())
      g << ", " << gp_quote(acc_dat) << " using 1:2 " << (eval_loss ? "" : "axes x1y2 ")
        << "with linespoints lw 2 pt 7 title " << (eval_loss ? "'validation loss'" : "'test accuracy'");
    g << "\n";
  }
  const int rc = std::system(("gnuplot " + shell_quote(script) + " 2>/dev/null").c_str());
  std::error_code ec;
  fs::remove(loss_dat, ec);
  fs::remove(acc_dat, ec);
  fs::remove(script, ec);
  if (rc != 0 || !fs::exists(png)) return "gnuplot failed (exit status " + std::to_string(rc) + "), no plot at " + png;
  return "";
}

}  // namespace ember::train
