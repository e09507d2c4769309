/// @file tests/reliability/test_nonfinite.cpp @brief A NaN/Inf injected into one micro-batch's gradients (GradAccumulatorOptions::inject_non_finite) skips exactly that window: weights, optimizer state and schedule untouched, counted, reported, training continues.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "optim/adamw.h"
#include "optim/grad_accumulator.h"
#include "optim/lr_scheduler.h"
#include "tests/harness/backends.h"
#include "tests/harness/datasets.h"
#include "tests/optim/fixtures.h"

#include "data/fashion_mnist.h"
#include "examples/ember_train/train.h"
#include "tests/train/temp_dir.h"

using namespace ember;
using Catch::Matchers::Contains;
using ember::test::optim_fixtures::CoreMLP;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

/// Mean squared error of micro-batch `k` (4 samples of 4 features, 3 targets), fixed data.
Tensor micro_loss(nn::Module& m, int64_t k, Device dev) {
  const Tensor x = test::random_input({4, 4}, 1000 + static_cast<uint64_t>(k)).to(dev);
  const Tensor y = test::random_input({4, 3}, 2000 + static_cast<uint64_t>(k)).to(dev);
  const Tensor d = m(x) - y;
  return sum(d * d) * 0.25;
}

/// Every parameter's values, on the CPU (compared bit for bit: the tensors are finite).
std::vector<std::vector<float>> weights_of(nn::Module& m) {
  std::vector<std::vector<float>> out;
  for (const Tensor& p : m.parameters()) out.push_back(p.to(Device::cpu()).to_vector<float>());
  return out;
}
std::vector<std::vector<float>> state_of(const optim::Optimizer& opt) {
  std::vector<std::vector<float>> out;
  for (const auto& [name, t] : opt.state_dict()) out.push_back(t.to(Device::cpu()).to_vector<float>());
  return out;
}

/// A model + AdamW + cosine schedule + accumulator over windows of 2 micro-batches.
struct Run {
  CoreMLP model;
  optim::AdamW opt;
  optim::CosineWithWarmup sched;
  optim::GradAccumulator acc;
  Device dev;
  Run(Device d, std::vector<optim::NonFiniteInjection> inject)
      : model(4, 8, 3, 11, d),
        opt(model.parameters(), {.lr = 0.05, .weight_decay = 0.01}),
        sched(opt, 1, 10),
        acc(model, opt, {.accum_steps = 2, .inject_non_finite = std::move(inject)}, &sched),
        dev(d) {}
  /// Runs window w (micro-batches 2w and 2w+1); returns whether the update was applied.
  bool window(int64_t w) {
    acc.backward(micro_loss(model, 2 * w, dev), 4);
    REQUIRE(acc.backward(micro_loss(model, 2 * w + 1, dev), 4));
    return !acc.last_step_skipped();
  }
};

}  // namespace

TEST_CASE("an injected NaN/Inf skips exactly its window; the run then equals one that never saw that window",
          "[reliability][nonfinite][cuda]") {
  for (const Device dev : test::devices()) {
    for (const double value : {kNaN, kInf, -kInf}) {
      // Micro-step 1: the first backward (no gradient exists yet: injected after it); 3 and 4: first and
      // last micro-batch of window 1 (into the existing gradient, before the backward).
      for (const int64_t step : {int64_t{1}, int64_t{3}, int64_t{4}}) {
        const int64_t bad = (step - 1) / 2;  // the window that holds the injected micro-step
        INFO(dev.str() << ", value " << value << ", micro-step " << step << " (window " << bad << ")");
        Run a(dev, {{step, value}});
        Run ref(dev, {});
        // `a` runs windows 0, 1, 2; the reference runs the same windows except the bad one.
        for (int64_t w = 0; w < 3; ++w) {
          const auto weights = weights_of(a.model);
          const auto state = state_of(a.opt);
          const double lr = a.opt.lr();
          const bool applied = a.window(w);
          if (w == bad) {
            CHECK_FALSE(applied);
            CHECK(std::isnan(a.acc.last_grad_norm()));
            CHECK(weights_of(a.model) == weights);  // untouched, bit for bit
            CHECK(state_of(a.opt) == state);
            CHECK(a.opt.lr() == lr);  // the schedule did not advance
            for (const Tensor& p : a.model.parameters())
              for (float g : p.grad().to(Device::cpu()).to_vector<float>()) REQUIRE(g == 0.0f);  // window discarded
          } else {
            CHECK(applied);
            CHECK(std::isfinite(a.acc.last_grad_norm()));
            ref.window(w);
            CHECK(weights_of(a.model) == weights_of(ref.model));
            CHECK(state_of(a.opt) == state_of(ref.opt));
          }
        }
        CHECK(a.acc.skipped_steps() == 1);
        CHECK(a.acc.optimizer_steps() == 2);
        CHECK(a.acc.micro_steps() == 6);
        CHECK(ref.acc.skipped_steps() == 0);
        CHECK(a.opt.steps() == ref.opt.steps());
      }
    }
  }
}

TEST_CASE("ember-train with a NaN injected into one micro-batch skips that step, counts and reports it, and goes on",
          "[reliability][nonfinite][train]") {
  if (!test::have_fashion_mnist()) {
    WARN("Fashion-MNIST not installed; skipping");
    return;
  }
  test::TempDir dir;
  train::TrainOptions o;
  o.model = train::ModelKind::MLP;
  o.micro_batch = 16;
  o.accum = 2;
  o.epochs = 1;
  o.device = train::DeviceChoice::CPU;
  o.limit_train = 128;  // 8 micro-batches: 4 windows
  o.limit_test = 100;
  o.progress = false;
  o.metrics = dir.file("metrics.csv");
  o.summary = dir.file("summary.json");
  o.inject_non_finite = {{.micro_step = 3, .value = kNaN}};  // the first micro-batch of window 2
  std::ostringstream log;
  const train::RunSummary s = train::run_training(o, log);
  CHECK(s.skipped_steps == 1);
  CHECK(s.optimizer_steps == 3);
  CHECK(s.micro_steps == 8);
  CHECK(std::isfinite(s.final_loss));
  CHECK(s.test_accuracy > 0.0);
  const auto summary = nlohmann::json::parse(test::read_bytes(o.summary));
  CHECK(summary["skipped_steps"] == 1);
  // metrics.csv: step,epoch,samples,loss,lr,grad_norm,skipped,elapsed_s; row 2 is the skipped window.
  std::istringstream csv(test::read_bytes(o.metrics));
  std::vector<std::vector<std::string>> rows;
  for (std::string line; std::getline(csv, line);) {
    std::vector<std::string> cells;
    std::istringstream cs(line);
    for (std::string c; std::getline(cs, c, ',');) cells.push_back(c);
    rows.push_back(cells);
  }
  REQUIRE(rows.size() == 5);
  for (size_t r = 1; r < rows.size(); ++r) {
    INFO("metrics row " << r);
    REQUIRE(rows[r].size() == 8);
    CHECK(rows[r][6] == (r == 2 ? "1" : "0"));
    CHECK((rows[r][5] == "nan") == (r == 2));  // no norm for the skipped window
  }
  CHECK(rows[2][0] == rows[1][0]);  // the step count does not advance on a skipped window
}
