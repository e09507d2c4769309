/// @file examples/ember_train/progress.h @brief Training progress display: a live bar on a terminal, plain log lines otherwise.
#pragma once
#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>

namespace ember::train {

/// Reports optimizer steps. On a terminal it redraws one line (epoch, window = optimizer step, loss,
/// samples/s or tokens/s, ETA); otherwise it prints a plain line every `log_every` steps. Messages (epoch results)
/// are printed on their own line either way.
class Progress {
 public:
  /// `unit`: what the rate counts ("samples", or "tokens" for a language model).
  Progress(std::ostream& out, bool live, int64_t log_every, std::string unit = "samples");

  /// Starts counting: `total_steps` optimizer steps this run will do in all (for the ETA), `done_steps`
  /// of them already done (a resumed run).
  void start(int64_t total_steps, int64_t done_steps);
  void step(int64_t epoch, int64_t epochs, int64_t step, double loss, double per_s);
  /// Prints a message on its own line (clearing a live bar first).
  void message(const std::string& text);
  /// Ends the live line.
  void finish();

  static std::string format_duration(double seconds);

 private:
  std::ostream& out_;
  bool live_;
  int64_t log_every_;
  std::string unit_;
  int64_t total_ = 0, first_ = 0;
  bool bar_drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace ember::train
