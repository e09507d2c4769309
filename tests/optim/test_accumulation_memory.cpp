/// @file tests/optim/test_accumulation_memory.cpp @brief Allocator stats: peak memory does not grow with accumulation steps; current bytes return to the baseline after every micro-batch backward.
#include <catch2/catch.hpp>

#include "optim/adamw.h"
#include "optim/grad_accumulator.h"
#include "tests/optim/fixtures.h"

using namespace ember;
using namespace ember::test::optim_fixtures;

namespace {

constexpr int64_t kMicro = 16, kIn = 64, kHidden = 128, kClasses = 10;

struct Run {
  int64_t peak = 0;                    ///< peak bytes over the measured windows, above the data set
  std::vector<int64_t> after_backward; ///< current bytes after each micro-batch backward
  int64_t baseline = 0;                ///< current bytes with params + grads + optimizer state + data
};

/// One warm-up window allocates .grad and the AdamW state; then `windows` windows are measured. The
/// data set is the same size for every configuration (16 micro-batches), so baselines are equal.
Run measure(int64_t accum, int64_t windows) {
  REQUIRE(accum * (windows + 1) <= 16);
  const Data d = make_data(kMicro * 16, kIn, kClasses, 21);
  CoreMLP m(kIn, kHidden, kClasses, 2);
  optim::AdamW opt(m.parameters(), {1e-3});
  optim::GradAccumulator acc(m, opt, {.accum_steps = accum, .clip_norm = 1.0});
  int64_t b = 0;
  auto micro_step = [&] {
    Tensor loss = mean_cross_entropy(m.forward(d.rows(d.x, b, b + kMicro)), d.rows(d.onehot, b, b + kMicro));
    acc.backward(loss, kMicro);
    b += kMicro;
  };
  for (int64_t k = 0; k < accum; ++k) micro_step();
  Run r;
  r.baseline = allocator_stats(Device::cpu()).current_bytes;
  reset_peak_stats(Device::cpu());
  for (int64_t k = 0; k < accum * windows; ++k) {
    micro_step();
    r.after_backward.push_back(allocator_stats(Device::cpu()).current_bytes);
  }
  r.peak = allocator_stats(Device::cpu()).peak_bytes - r.baseline;
  return r;
}

}  // namespace

TEST_CASE("peak memory of micro B x accum 8 stays within 2% of micro B x accum 1", "[optim][accumulation][memory]") {
  const Run one = measure(1, 8), eight = measure(8, 1);  // the same 8 micro-batches each
  INFO("activation peak above the baseline: accum 1 " << one.peak << " bytes, accum 8 " << eight.peak << " bytes");
  CHECK(one.peak > 0);
  CHECK(static_cast<double>(eight.peak + eight.baseline) <= 1.02 * static_cast<double>(one.peak + one.baseline));
  // Stronger: the working set above the baseline is the same, byte for byte.
  CHECK(eight.peak == one.peak);
}

TEST_CASE("current bytes return to the baseline after every micro-batch backward", "[optim][accumulation][memory]") {
  const Run r = measure(4, 2);
  REQUIRE(r.after_backward.size() == 8);
  for (size_t i = 0; i < r.after_backward.size(); ++i) {
    INFO("micro-batch " << i);
    CHECK(r.after_backward[i] == r.baseline);
  }
}
