/// @file tests/train/test_cli.cpp @brief ember-train flag parsing: defaults, every flag's effect, and errors that name the flag.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>

#include "core/error.h"
#include "examples/ember_train/cli.h"
#include "tests/train/temp_dir.h"

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

TEST_CASE("ember-train maps every exception out of argument parsing to an error naming the flag and the value",
          "[train][cli]") {
  using V = std::vector<std::string>;
  const std::string huge = "99999999999999999999999";  // beyond int64: CLI11's std::stoll throws std::out_of_range
  const std::vector<std::pair<V, std::vector<std::string>>> cases{
      // Negated flags: CLI11 2.1 converts their value with std::stoll and lets std::out_of_range escape
      // (make fuzz found the first one; the binary printed only "ember-train: error: stoll").
      {{"--no-progress=" + huge}, {"--no-progress: value '" + huge + "' is out of range"}},
      {{"--no-shuffle=-" + huge}, {"--no-shuffle: value '-" + huge + "' is out of range"}},
      // The culprit in the middle of other arguments is found, not the last argument.
      {{"--micro-batch", "8", "--no-progress=" + huge, "--accum", "2"}, {"--no-progress: value '" + huge + "'"}},
      // A megabyte-long value is quoted shortened.
      {{"--no-shuffle=" + std::string(100000, '7')}, {"--no-shuffle: value '7777", "(100000 characters)"}},
      // Integer options given huge or odd numbers: CLI11 2.1 (strtoll, base 0, no range check) made
      // the first two INT64_MAX, the seed -1 2^64 - 1 and 0x10 sixteen; now each is an error.
      {{"--micro-batch", huge}, {"--micro-batch: value '" + huge + "' is out of range"}},
      {{"--epochs=" + huge}, {"--epochs: value '" + huge + "' is out of range"}},
      {{"--seed", "-1"}, {"--seed: value '-1' is not a plain decimal integer", "[0, 2^64)"}},
      {{"--seed", "18446744073709551616"}, {"--seed: value '18446744073709551616' is out of range"}},
      {{"--warmup", "0x10"}, {"--warmup: value '0x10' is not a plain decimal integer"}},
      {{"--threads", "4294967297"}, {"--threads", "4294967297"}},
      {{"--micro-batch", "1e3"}, {"--micro-batch: value '1e3'"}},
      {{"--steps", " 5"}, {"--steps: value ' 5'"}},
      {{"--accum", ""}, {"--accum"}},
      {{"--epochs", "9223372036854775807"}, {"--epochs: must be in [1, 2^20]"}},  // fits, but epochs x steps would overflow
      {{"--no-progress=abc"}, {"--progress", "abc"}},  // CLI11 names the option by its first name
      {{"--progress=maybe"}, {"--progress", "maybe"}},
      {{"--lr", "1e999"}, {"--lr"}},
      {{"--clip-norm", "-inf"}, {"--clip-norm"}},
  };
  for (const auto& [args, wants] : cases) {
    INFO("args: " << args.back().substr(0, 80));
    try {
      parse_cli(args);
      FAIL("accepted");
    } catch (const ember::Error& e) {
      for (const std::string& want : wants) CHECK_THAT(e.message(), Contains(want));
    }
  }
  // A positive flag given a huge number is a valid "true" for CLI11 (only its sign counts): no error.
  CHECK(parse({"--progress=" + huge}).progress);
  CHECK_FALSE(parse({"--progress=-" + huge}).progress);
  // Plain decimal integers still parse, with a sign where it belongs.
  CHECK(parse({"--seed", "18446744073709551615"}).seed == UINT64_MAX);
  CHECK(parse({"--micro-batch", "+8"}).micro_batch == 8);
  CHECK(parse({"--accum=08"}).accum == 8);    // CLI11 alone: octal, "08" an error
  CHECK(parse({"--accum", "010"}).accum == 10);  // CLI11 alone: octal eight
}

#ifdef EMBER_TRAIN_BINARY
TEST_CASE("ember-train binary: a huge flag value is an error naming the flag, exit status 1", "[train][cli]") {
  test::TempDir dir;
  const std::string err = dir.file("err.txt");
  const int rc = std::system((std::string(EMBER_TRAIN_BINARY) + " --no-progress=99999999999999999999999 >" +
                              dir.file("out.txt") + " 2>" + err).c_str());
  CHECK((WIFEXITED(rc) && WEXITSTATUS(rc) == 1));  // before: "ember-train: error: stoll"
  CHECK(test::read_bytes(err) ==
        "ember-train: error: --no-progress: value '99999999999999999999999' is out of range (stoll)\n");
}
#endif
