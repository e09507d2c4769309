/// @file tests/train/test_cli.cpp @brief ember-train flag parsing: defaults, every flag's effect, and errors that name the flag.
#include <catch2/catch.hpp>

#include "core/error.h"
#include "examples/ember_train/cli.h"

using namespace ember;
using namespace ember::train;
using Catch::Matchers::Contains;

namespace {
TrainOptions parse(const std::vector<std::string>& args) {
  CliResult r = parse_cli(args);
  REQUIRE_FALSE(r.exit_now);
  return r.options;
}
}  // namespace

TEST_CASE("ember-train defaults are the make-train configuration", "[train][cli]") {
  TrainOptions o = parse({});
  CHECK(o.model == ModelKind::CNN);
  CHECK(o.norm == NormKind::Batch);
  CHECK(o.bn_stats == BnStats::Micro);
  CHECK(o.micro_batch == 32);
  CHECK(o.accum == 4);
  CHECK(o.optimizer == OptimizerKind::AdamW);
  CHECK(o.resolved_lr() == 3e-3);
  CHECK(o.epochs == 5);
  CHECK(o.shuffle);
  CHECK(o.device == DeviceChoice::Auto);
  CHECK(o.data_dir == "/usr/share/datasets/fashion-mnist");
  CHECK(o.steps == 0);
}

TEST_CASE("ember-train parses every flag", "[train][cli]") {
  TrainOptions o = parse({"--model", "mlp", "--norm", "batch", "--bn-stats", "window", "--micro-batch", "8",
                          "--accum", "3", "--epochs", "2", "--steps", "17", "--optimizer", "sgd", "--lr", "0.1",
                          "--momentum", "0.5", "--weight-decay", "1e-4", "--clip-norm", "2.5", "--seed", "9",
                          "--no-shuffle", "--device", "cpu", "--threads", "2", "--data", "/d", "--save", "s.st",
                          "--checkpoint-every", "5", "--metrics", "m.csv", "--plot", "p.png", "--summary", "s.json",
                          "--schedule", "constant", "--warmup", "3", "--log-every", "7", "--no-progress",
                          "--limit-train", "100", "--limit-test", "50"});
  CHECK(o.model == ModelKind::MLP);
  CHECK(o.bn_stats == BnStats::Window);
  CHECK(o.micro_batch == 8);
  CHECK(o.accum == 3);
  CHECK(o.epochs == 2);
  CHECK(o.steps == 17);
  CHECK(o.optimizer == OptimizerKind::SGD);
  CHECK(o.resolved_lr() == 0.1);
  CHECK(o.resolved_momentum() == 0.5);
  CHECK(o.resolved_weight_decay() == 1e-4);
  CHECK(o.clip_norm == 2.5);
  CHECK(o.seed == 9);
  CHECK_FALSE(o.shuffle);
  CHECK(o.device == DeviceChoice::CPU);
  CHECK(o.threads == 2);
  CHECK(o.data_dir == "/d");
  CHECK(o.save == "s.st");
  CHECK(o.checkpoint_every == 5);
  CHECK(o.metrics == "m.csv");
  CHECK(o.plot == "p.png");
  CHECK(o.summary == "s.json");
  CHECK(o.schedule == ScheduleKind::Constant);
  CHECK(o.warmup == 3);
  CHECK(o.log_every == 7);
  CHECK_FALSE(o.progress);
  CHECK(o.limit_train == 100);
  CHECK(o.limit_test == 50);
  CHECK(parse({"--norm", "none"}).norm == NormKind::None);
  CHECK(parse({"--norm", "sync"}).norm == NormKind::Sync);
  CHECK(parse({"--resume", "r.st"}).resume == "r.st");
  CHECK(parse({"--init", "i.st"}).init == "i.st");
  CHECK(parse({"--no-shuffle", "--shuffle"}).shuffle);
  CHECK(parse({"--optimizer", "sgd"}).resolved_lr() == 0.05);
}

TEST_CASE("ember-train --help documents every flag", "[train][cli]") {
  CliResult r = parse_cli(std::vector<std::string>{"--help"});
  CHECK(r.exit_now);
  CHECK(r.exit_code == 0);
  for (const char* flag : {"--model", "--norm", "--bn-stats", "--micro-batch", "--accum", "--epochs", "--steps",
                           "--optimizer", "--lr", "--momentum", "--weight-decay", "--clip-norm", "--seed",
                           "--shuffle", "--no-shuffle", "--device", "--threads", "--data", "--init", "--save",
                           "--resume", "--checkpoint-every", "--metrics", "--plot", "--summary"})
    CHECK_THAT(r.text, Contains(flag));
  CHECK_THAT(r.text, !Contains("--limit-train"));  // internal flag stays hidden
}

TEST_CASE("ember-train rejects bad values with an error naming the flag", "[train][cli]") {
  using V = std::vector<std::string>;
  const std::vector<std::pair<V, std::string>> cases{
      {{"--model", "resnet"}, "--model: 'resnet' is not one of cnn, mlp"},
      {{"--norm", "layer"}, "--norm"},
      {{"--bn-stats", "global"}, "--bn-stats"},
      {{"--optimizer", "adam"}, "--optimizer: 'adam'"},
      {{"--device", "tpu"}, "--device: 'tpu'"},
      {{"--schedule", "step"}, "--schedule"},
      {{"--micro-batch", "0"}, "--micro-batch: must be >= 1, got 0"},
      {{"--micro-batch", "abc"}, "--micro-batch"},
      {{"--accum", "-2"}, "--accum: must be >= 1, got -2"},
      {{"--epochs", "0"}, "--epochs"},
      {{"--steps", "-1"}, "--steps"},
      {{"--lr", "0"}, "--lr: must be > 0"},
      {{"--lr", "nan"}, "--lr"},
      {{"--lr", "fast"}, "--lr"},
      {{"--optimizer", "sgd", "--momentum", "1"}, "--momentum: must be in [0, 1)"},
      {{"--momentum", "0.9"}, "--momentum: applies to --optimizer sgd only"},
      {{"--weight-decay", "-1"}, "--weight-decay"},
      {{"--clip-norm", "-0.5"}, "--clip-norm"},
      {{"--threads", "-1"}, "--threads"},
      {{"--checkpoint-every", "10"}, "--checkpoint-every: needs --save"},
      {{"--init", "a", "--resume", "b"}, "--init: cannot be combined with --resume"},
      {{"--norm", "none", "--bn-stats", "window"}, "--bn-stats window"},
      {{"--warmup", "-3"}, "--warmup"},
      {{"--bogus"}, "--bogus"},
      {{"--epochs"}, "--epochs"},
  };
  for (const auto& [args, want] : cases) {
    INFO("args: " << args.front());
    CHECK_THROWS_AS(parse_cli(args), ember::Error);
    CHECK_THROWS_WITH(parse_cli(args), Contains(want));
  }
}
