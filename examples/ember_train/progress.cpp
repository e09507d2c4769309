/// @file examples/ember_train/progress.cpp @brief Progress bar drawing, throttled redraws and ETA formatting.
#include "examples/ember_train/progress.h"

#include <cmath>
#include <cstdio>
#include <iomanip>
#include <sstream>
#include <utility>

namespace ember::train {

Progress::Progress(std::ostream& out, bool live, int64_t log_every, std::string unit)
    : out_(out), live_(live), log_every_(log_every), unit_(std::move(unit)) {}

void Progress::start(int64_t total_steps, int64_t done_steps) {
  total_ = total_steps;
  first_ = done_steps;
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

std::string Progress::format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const auto s = static_cast<int64_t>(std::llround(seconds));
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%02lld:%02lld", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  return buf;
}

void Progress::step(int64_t epoch, int64_t epochs, int64_t step, double loss, double per_s) {
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const int64_t done = step - first_;
  const double eta = done > 0 ? elapsed / static_cast<double>(done) * static_cast<double>(total_ - step) : NAN;
  std::ostringstream line;
  line << "epoch " << epoch << "/" << epochs << "  step " << step << "/" << total_ << "  loss " << std::fixed
       << std::setprecision(4) << loss << "  " << std::setprecision(0) << per_s << " " << unit_ << "/s";
  if (live_) {
    if (step != total_ && std::chrono::duration<double>(now - last_draw_).count() < 0.1) return;
    last_draw_ = now;
    constexpr int kWidth = 24;
    const double frac = total_ > 0 ? static_cast<double>(step) / static_cast<double>(total_) : 0.0;
    const int filled = static_cast<int>(frac * kWidth);
    out_ << "\r[" << std::string(static_cast<size_t>(filled), '#') << std::string(static_cast<size_t>(kWidth - filled), '.')
         << "] " << line.str() << "  ETA " << format_duration(eta) << "\x1b[K" << std::flush;
    bar_drawn_ = true;
  } else if (step % log_every_ == 0 || step == total_) {
    out_ << line.str() << "  elapsed " << format_duration(elapsed) << "  eta " << format_duration(eta) << "\n"
         << std::flush;
  }
}

void Progress::message(const std::string& text) {
  if (bar_drawn_) out_ << "\r\x1b[K";
  bar_drawn_ = false;
  out_ << text << "\n" << std::flush;
}

void Progress::finish() {
  if (bar_drawn_) out_ << "\n" << std::flush;
  bar_drawn_ = false;
}

}  // namespace ember::train
