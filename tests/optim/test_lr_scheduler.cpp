/// @file tests/optim/test_lr_scheduler.cpp @brief LR schedules: closed-form values per optimizer step, per-group bases, resume via set_step, validation.
#include <catch2/catch.hpp>
#include <cmath>
#include <numbers>

#include "optim/lr_scheduler.h"
#include "optim/sgd.h"
#include "tests/harness/backends.h"

using namespace ember;

namespace {
Tensor param(uint64_t seed) { return test::random_input({2}, seed, -1, 1, TensorOptions{}.set_requires_grad(true)); }
}  // namespace

TEST_CASE("StepLR multiplies by gamma every step_size optimizer steps", "[optim]") {
  optim::SGD opt({param(1)}, {0.5});
  optim::StepLR s(opt, 3, 0.1);
  std::vector<double> seen{s.last_lr()};
  for (int i = 0; i < 7; ++i) {
    s.step();
    seen.push_back(s.last_lr());
  }
  const std::vector<double> want{0.5, 0.5, 0.5, 0.05, 0.05, 0.05, 0.005, 0.005};
  REQUIRE(seen.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) CHECK(seen[i] == Approx(want[i]).epsilon(1e-12));
  CHECK(s.last_step() == 7);
}

TEST_CASE("CosineWithWarmup warms up linearly, then decays on a half cosine to min_lr", "[optim]") {
  optim::SGD opt({param(1)}, {1.0});
  optim::CosineWithWarmup s(opt, 4, 12, 0.1);
  std::vector<double> lr{opt.lr()};
  for (int i = 0; i < 14; ++i) {
    s.step();
    lr.push_back(opt.lr());
  }
  // Warm-up: the first update already uses base/4, the 4th the full base.
  CHECK(lr[0] == Approx(0.25));
  CHECK(lr[1] == Approx(0.5));
  CHECK(lr[3] == Approx(1.0));
  CHECK(lr[4] == Approx(1.0));  // cosine progress 0
  CHECK(lr[8] == Approx(0.1 + 0.9 * 0.5));  // half way through the 8 decay steps
  CHECK(lr[10] == Approx(0.1 + 0.9 * 0.5 * (1 + std::cos(std::numbers::pi * 6 / 8))));
  CHECK(lr[12] == Approx(0.1));
  CHECK(lr[14] == Approx(0.1));
  for (size_t i = 4; i + 1 < lr.size(); ++i) CHECK(lr[i + 1] <= lr[i]);
}

TEST_CASE("schedules scale every group from its initial lr and resume with set_step", "[optim]") {
  optim::SGD opt(std::vector<optim::ParamGroup>{{{param(1)}, 0.2, 0.0}, {{param(2)}, 0.02, 0.0}}, {});
  optim::StepLR s(opt, 1, 0.5);
  s.step();
  s.step();
  CHECK(s.last_lrs() == std::vector<double>{0.05, 0.005});
  // A resumed run: a fresh scheduler on a fresh optimizer jumps to the saved step.
  optim::SGD opt2(std::vector<optim::ParamGroup>{{{param(3)}, 0.2, 0.0}, {{param(4)}, 0.02, 0.0}}, {});
  optim::StepLR s2(opt2, 1, 0.5);
  s2.set_step(2);
  CHECK(s2.last_lrs() == s.last_lrs());
  optim::ConstantWithWarmup c(opt2, 2);
  CHECK(opt2.lr() == Approx(0.1));
  c.step();
  c.step();
  c.step();
  CHECK(opt2.lr() == Approx(0.2));
}

TEST_CASE("schedule options are validated", "[optim]") {
  optim::SGD opt({param(1)}, {0.5});
  CHECK_THROWS_WITH(optim::StepLR(opt, 0), Catch::Contains("step_size must be >= 1, got 0"));
  CHECK_THROWS_WITH(optim::StepLR(opt, 2, 0.0), Catch::Contains("gamma must be > 0, got 0"));
  CHECK_THROWS_WITH(optim::CosineWithWarmup(opt, 5, 0), Catch::Contains("total_steps must be >= 1, got 0"));
  CHECK_THROWS_WITH(optim::CosineWithWarmup(opt, 11, 10), Catch::Contains("warmup_steps must be in [0, 10]"));
  CHECK_THROWS_WITH(optim::CosineWithWarmup(opt, 1, 10, -1.0), Catch::Contains("min_lr must be >= 0, got -1"));
  CHECK_THROWS_WITH(optim::ConstantWithWarmup(opt, -1), Catch::Contains("warmup_steps must be >= 0, got -1"));
  optim::StepLR s(opt, 2);
  CHECK_THROWS_WITH(s.set_step(-3), Catch::Contains("must be >= 0, got -3"));
}
