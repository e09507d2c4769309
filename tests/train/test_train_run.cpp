/// @file tests/train/test_train_run.cpp @brief ember-train end to end on a data subset: summary/metrics content, short windows, --steps, --init.
// Compiled when the training loop is built (examples/CMakeLists.txt: nn and optim present).
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/safetensors.h"
#include "data/fashion_mnist.h"
#include "examples/ember_train/checkpoint.h"
#include "examples/ember_train/train.h"
#include "tests/harness/datasets.h"
#include "tests/train/run_compare.h"
#include "tests/train/temp_dir.h"

using namespace ember;
using namespace ember::train;
using Catch::Matchers::Contains;

namespace {

/// A small CPU run: `train` samples, micro 16 x accum 2, the MLP with BN, one epoch.
TrainOptions small(int64_t train = 256) {
  TrainOptions o;
  o.model = ModelKind::MLP;
  o.micro_batch = 16;
  o.accum = 2;
  o.epochs = 1;
  o.device = DeviceChoice::CPU;
  o.limit_train = train;
  o.limit_test = 200;
  o.progress = false;
  return o;
}

}  // namespace

TEST_CASE("ember-train end to end writes a consistent summary and metrics", "[train][e2e]") {
  if (!test::have_fashion_mnist()) {
    WARN("Fashion-MNIST not installed; skipping");
    return;
  }
  test::TempDir dir;
  TrainOptions o = small();
  o.summary = dir.file("s.json");
  o.metrics = dir.file("m.csv");
  std::ostringstream log;
  const RunSummary s = run_training(o, log);

  const auto j = nlohmann::json::parse(test::read_bytes(o.summary));
  CHECK(j["device"] == "cpu");
  CHECK(j["world_size"] == 1);
  CHECK(j["micro_batch"] == 16);
  CHECK(j["accum"] == 2);
  CHECK(j["effective_batch"] == 32);
  CHECK(j["micro_steps"] == 16);      // 256 / 16
  CHECK(j["optimizer_steps"] == 8);   // 16 / 2
  CHECK(j["skipped_steps"] == 0);
  CHECK(j["allreduce_calls"] == 0);
  CHECK(j["peak_bytes"].get<int64_t>() > 0);
  CHECK(j["peak_reserved_bytes"].get<int64_t>() >= j["peak_bytes"].get<int64_t>());
  CHECK(j["wall_s"].get<double>() > 0);
  CHECK(j["samples_per_s"].get<double>() > 0);
  CHECK(j["test_samples"] == 200);
  // 8 AdamW steps on 256 samples already beat chance (0.1) by far; the loss is finite and below ln(10).
  CHECK(j["test_accuracy"].get<double>() > 0.3);
  CHECK(j["final_loss"].get<double>() < std::log(10.0));
  CHECK(j["test_accuracy"].get<double>() == s.test_accuracy);

  const auto rows = test::lines(test::read_bytes(o.metrics));
  REQUIRE(rows.size() == 9);
  CHECK(rows[0] == "step,epoch,samples,loss,lr,grad_norm,skipped,elapsed_s");
  CHECK_THAT(rows[1], Catch::StartsWith("1,1,32,"));
  CHECK_THAT(rows[8], Catch::StartsWith("8,1,32,"));
  CHECK_THAT(log.str(), Contains("effective batch 32 = micro-batch 16 x accum 2 x world size 1"));
  CHECK_THAT(log.str(), Contains("epoch 1/1: test accuracy"));
}

TEST_CASE("ember-train closes a short last window per epoch and stops at --steps", "[train][e2e]") {
  if (!test::have_fashion_mnist()) return;
  test::TempDir dir;
  TrainOptions o = small(80);  // 5 micro-batches per epoch -> windows of 2, 2, 1
  o.epochs = 2;
  o.metrics = dir.file("m.csv");
  std::ostringstream log;
  RunSummary s = run_training(o, log);
  CHECK(s.micro_steps == 10);
  CHECK(s.optimizer_steps == 6);
  const auto rows = test::lines(test::read_bytes(o.metrics));
  REQUIRE(rows.size() == 7);
  CHECK_THAT(rows[3], Catch::StartsWith("3,1,16,"));
  CHECK_THAT(rows[4], Catch::StartsWith("4,2,32,"));

  o.steps = 4;
  s = run_training(o, log);
  CHECK(s.optimizer_steps == 4);
  CHECK(s.micro_steps == 7);
}

TEST_CASE("ember-train --norm sync in one process trains as --norm batch", "[train][e2e]") {
  if (!test::have_fashion_mnist()) return;
  TrainOptions o = small(128);
  std::ostringstream log;
  const RunSummary batch = run_training(o, log);
  o.norm = NormKind::Sync;
  const RunSummary sync = run_training(o, log);
  // A world of one: SyncBatchNorm's merged statistics are the micro-batch's own. Its mean/variance
  // come from a Chan merge instead of the Welford kernel, so the runs agree to float rounding, not
  // bitwise: 4 AdamW steps keep the loss within 1e-4 relative.
  CHECK(sync.optimizer_steps == batch.optimizer_steps);
  CHECK(sync.final_loss == Approx(batch.final_loss).epsilon(1e-4));
  CHECK(sync.norm == "sync");
}

TEST_CASE("ember-train drops a final 1-sample micro-batch that batch norm cannot train on, and --drop-last drops "
          "the short step", "[train][e2e]") {
  if (!test::have_fashion_mnist()) return;
  // 81 samples, micro 16: five full micro-batches and 1 sample, which BatchNorm1d cannot normalize in
  // training mode. The run completes on the 80 and says so (without the rule it aborted at the end).
  TrainOptions o = small(81);
  std::ostringstream log;
  RunSummary s = run_training(o, log);
  CHECK(s.micro_steps == 5);
  CHECK(s.optimizer_steps == 3);  // windows 2, 2, 1
  CHECK_THAT(log.str(), Contains("last global micro-step of each epoch (1 sample) is too small for batch norm in "
                                 "training mode (1 value per channel): it is dropped"));
  o.norm = NormKind::Sync;  // one process: SyncBatchNorm's total is that 1 sample too
  s = run_training(o, log);
  CHECK(s.micro_steps == 5);
  // Without batch norm the 1-sample micro-batch trains.
  o.norm = NormKind::None;
  std::ostringstream plain;
  CHECK(run_training(o, plain).micro_steps == 6);
  CHECK_THAT(plain.str(), !Contains("dropped"));
  // A short last micro-batch of 10 trains by default; --drop-last drops it (with a log line).
  o = small(90);
  std::ostringstream kept;
  CHECK(run_training(o, kept).micro_steps == 6);
  CHECK_THAT(kept.str(), !Contains("dropped") && !Contains("not trained on"));
  o.drop_last = true;
  std::ostringstream dropped;
  s = run_training(o, dropped);
  CHECK(s.micro_steps == 5);
  CHECK(s.optimizer_steps == 3);
  CHECK_THAT(dropped.str(), Contains("--drop-last: the last 10 samples of each epoch's order are not trained on"));
  // Too few samples for one complete step, and a micro-batch that batch norm can never train on.
  o = small(10);
  o.drop_last = true;
  CHECK_THROWS_WITH(run_training(o, log), Contains("drop_last") && Contains("at least 16"));
  o = small(32);
  o.micro_batch = 1;
  CHECK_THROWS_WITH(run_training(o, log), Contains("--micro-batch 1") && Contains("more than 1 sample per micro-batch"));
}

TEST_CASE("ember-train --dropout: a resumed run needs no generator position", "[train][e2e]") {
  if (!test::have_fashion_mnist()) return;
  CHECK(parse_cli(std::vector<std::string>{"--dropout", "0.25", "--drop-last"}).options.dropout == 0.25);
  CHECK(parse_cli(std::vector<std::string>{"--drop-last"}).options.drop_last);
  CHECK_THROWS_WITH(parse_cli(std::vector<std::string>{"--dropout", "1"}), Contains("--dropout: must be in [0, 1)"));
  // MLP with dropout 0.5, shuffled, 80 samples: 5 micro-batches of 16 per epoch, windows 2, 2, 1; 2 epochs.
  test::TempDir dir;
  std::ostringstream log;
  auto opts = [&] {
    TrainOptions o = small(80);
    o.epochs = 2;
    o.dropout = 0.5;
    o.norm = NormKind::None;
    o.limit_test = 20;
    return o;
  };
  TrainOptions full = opts();
  full.save = dir.file("full.safetensors");
  REQUIRE(run_training(full, log).optimizer_steps == 6);
  TrainOptions first = opts();  // interrupted mid-epoch, after 2 of the 3 steps of epoch 1
  first.steps = 2;
  first.save = dir.file("part.safetensors");
  run_training(first, log);
  // The checkpoint's generator position is not what the rest of the run draws from: overwrite it.
  SafetensorsContent part = load_safetensors(first.save);
  part.metadata["rng_seed"] = "987654321";
  part.metadata["rng_offset"] = "4096";
  save_safetensors(first.save, part.tensors, part.metadata);
  TrainOptions rest = opts();
  rest.resume = first.save;
  rest.save = dir.file("resumed.safetensors");
  REQUIRE(run_training(rest, log).optimizer_steps == 6);
  // Bit-identical: every micro-batch drew its masks from (seed, epoch, index) in both runs.
  const SafetensorsContent a = load_safetensors(full.save), b = load_safetensors(rest.save);
  REQUIRE(a.tensors.size() == b.tensors.size());
  auto max_diff = [](const Tensor& x, const Tensor& y) {
    const auto u = x.to_vector<double>(), v = y.to_vector<double>();
    double d = u.size() == v.size() ? 0.0 : INFINITY;
    for (size_t i = 0; i < std::min(u.size(), v.size()); ++i) d = std::max(d, std::abs(u[i] - v[i]));
    return d;
  };
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    INFO(a.tensors[i].first);
    CHECK(max_diff(a.tensors[i].second, b.tensors[i].second) == 0.0);
  }
  // And dropout is active: without it the weights differ.
  TrainOptions plain = opts();
  plain.dropout = 0;
  plain.save = dir.file("plain.safetensors");
  run_training(plain, log);
  CHECK(max_diff(load_safetensors(plain.save).find("fc3.weight"), a.find("fc3.weight")) > 1e-4);
}

TEST_CASE("ember-train runtime errors name the problem", "[train][e2e]") {
  TrainOptions o = small();
  std::ostringstream log;
  o.norm = NormKind::Sync;
  o.bn_stats = BnStats::Window;
  CHECK_THROWS_WITH(run_training(o, log), Contains("--bn-stats window") && Contains("--norm sync"));
  o = small();
  o.data_dir = "/nonexistent";
  CHECK_THROWS_WITH(run_training(o, log), Contains("/nonexistent") && Contains("--data"));
  if (!test::have_fashion_mnist()) return;
  test::TempDir dir;
  o = small(32);
  o.save = dir.file("mlp.safetensors");
  run_training(o, log);
  o = small(32);
  o.model = ModelKind::CNN;
  o.init = dir.file("mlp.safetensors");
  CHECK_THROWS_WITH(run_training(o, log), Contains("fc1.weight"));
  o.init = dir.file("missing.safetensors");
  CHECK_THROWS_WITH(run_training(o, log), Contains("missing.safetensors"));
}

#ifdef EMBER_TRAIN_BINARY
TEST_CASE("ember-train binary reports errors and help with exit codes", "[train][e2e]") {
  test::TempDir dir;
  const std::string bin = EMBER_TRAIN_BINARY;
  const std::string err = dir.file("err.txt");
  auto run = [&](const std::string& args) {
    const int rc = std::system((bin + " " + args + " >" + dir.file("out.txt") + " 2>" + err).c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  };
  CHECK(run("--micro-batch 0") == 1);
  CHECK_THAT(test::read_bytes(err), Contains("ember-train: error: --micro-batch: must be >= 1, got 0"));
  CHECK(run("--norm sync --bn-stats window") == 1);
  CHECK_THAT(test::read_bytes(err), Contains("ember-train: error: --bn-stats window: not available with --norm sync"));
  CHECK(run("--help") == 0);
  CHECK_THAT(test::read_bytes(dir.file("out.txt")), Contains("--checkpoint-every"));
}

#ifdef EMBER_MPIEXEC
TEST_CASE("ember-train under mpirun -np 3 equals one process with 3x the micro-batch (no BN)", "[train][e2e][mpi]") {
  if (!test::have_fashion_mnist()) return;
  test::TempDir dir;
  // 200 samples, micro 4 x 3 ranks: 16 full global micro-steps, then 8 samples (ranks 0 and 1 get 4,
  // rank 2 none). Windows of accum 2: 8 full and a short one of one micro-step.
  const std::string common = std::string(EMBER_TRAIN_BINARY) +
                             " --model mlp --norm none --optimizer sgd --lr 0.05 --accum 2 --epochs 1 --no-shuffle"
                             " --device cpu --threads 1 --limit-train 200 --limit-test 100 --no-progress";
  auto run = [&](const std::string& cmd, const std::string& tag) {
    test::run_ok(cmd + " --save " + dir.file(tag + ".safetensors") + " --summary " + dir.file(tag + ".json") +
                     " --metrics " + dir.file(tag + ".csv"),
                 dir.file(tag + ".log"));
  };
  run(common + " --micro-batch 12", "single");
  run(test::mpirun(3) + common + " --micro-batch 4", "mpi");

  const auto single = nlohmann::json::parse(test::read_bytes(dir.file("single.json")));
  const auto mpi = nlohmann::json::parse(test::read_bytes(dir.file("mpi.json")));
  CHECK(mpi["world_size"] == 3);
  CHECK(mpi["effective_batch"] == single["effective_batch"]);  // 4 x 2 x 3 = 12 x 2 x 1
  CHECK(mpi["optimizer_steps"] == 9);
  CHECK(single["optimizer_steps"] == 9);
  CHECK(mpi["allreduce_calls"] == 18);  // the MLP's 2.1 MB of gradients: a 1 MiB first bucket, then fc1.weight
  CHECK(single["allreduce_calls"] == 0);
  CHECK_THAT(test::read_bytes(dir.file("mpi.log")), Contains("effective batch 24 = micro-batch 4 x accum 2 x world size 3"));

  // Same samples per window, summed in another order: every tensor agrees to float32 rounding (1e-5 of
  // its largest entry, as the accumulation tests), after 9 SGD steps with momentum.
  test::check_checkpoints_close(dir.file("single.safetensors"), dir.file("mpi.safetensors"), {1e-5, 1e-7, {}, 0});
  // The logged per-window losses are global (all ranks' samples), so they match too.
  const auto rs = test::lines(test::read_bytes(dir.file("single.csv")));
  const auto rm = test::lines(test::read_bytes(dir.file("mpi.csv")));
  REQUIRE(rs.size() == rm.size());
  for (size_t i = 1; i < rs.size(); ++i) {
    const double ls = std::stod(rs[i].substr(rs[i].find(',', rs[i].find(',', rs[i].find(',') + 1) + 1) + 1));
    const double lm = std::stod(rm[i].substr(rm[i].find(',', rm[i].find(',', rm[i].find(',') + 1) + 1) + 1));
    CHECK(lm == Approx(ls).epsilon(1e-5));
  }
}

TEST_CASE("ember-train under mpirun -np 3 with dropout equals one process with 3x the accumulation", "[train][e2e][mpi]") {
  if (!test::have_fashion_mnist()) return;
  test::TempDir dir;
  // 200 samples, micro-batch 4: the 3-rank run's global micro-step k holds the single run's micro-batches
  // 3k, 3k+1, 3k+2 (the last step: 8 samples, ranks 0 and 1), so its windows of accum 2 are the single
  // run's windows of accum 6 (8 full, then 2 micro-batches). Each micro-batch draws its dropout masks
  // from (seed, epoch, its global index), so the masks follow the samples: identical in both runs.
  const std::string common = std::string(EMBER_TRAIN_BINARY) +
                             " --model mlp --norm none --dropout 0.5 --optimizer sgd --lr 0.05 --epochs 1"
                             " --micro-batch 4 --device cpu --threads 1 --limit-train 200 --limit-test 100 --no-progress";
  auto run = [&](const std::string& cmd, const std::string& tag) {
    test::run_ok(cmd + " --save " + dir.file(tag + ".safetensors") + " --summary " + dir.file(tag + ".json"),
                 dir.file(tag + ".log"));
  };
  run(common + " --accum 6", "single");
  run(test::mpirun(3) + common + " --accum 2", "mpi");
  const auto single = nlohmann::json::parse(test::read_bytes(dir.file("single.json")));
  const auto mpi = nlohmann::json::parse(test::read_bytes(dir.file("mpi.json")));
  CHECK(mpi["effective_batch"] == single["effective_batch"]);  // 4 x 2 x 3 = 4 x 6 x 1
  CHECK(mpi["optimizer_steps"] == 9);
  CHECK(single["optimizer_steps"] == 9);
  // Same samples and masks per window, summed in another order: every tensor to float32 rounding (1e-5
  // of its largest entry, as the no-dropout comparison above). With the masks of the old scheme (every
  // rank seeded alike) the weights differ by ~1e-2 of their scale.
  test::check_checkpoints_close(dir.file("single.safetensors"), dir.file("mpi.safetensors"), {1e-5, 1e-7, {}, 0});
}

TEST_CASE("ember-train under mpirun -np 3 drops only a rank's 1-sample share of the last step with batch norm",
          "[train][e2e][mpi]") {
  if (!test::have_fashion_mnist()) return;
  test::TempDir dir;
  // 197 samples, micro 4 x 3 ranks: 16 full global micro-steps, then 5 samples: rank 0 gets 4, rank 1 one
  // (BatchNorm1d cannot normalize it: dropped; rank 1 joins the window with an empty micro-batch), rank 2 none.
  test::run_ok(test::mpirun(3) + EMBER_TRAIN_BINARY +
                   " --model mlp --norm batch --accum 2 --micro-batch 4 --epochs 1 --device cpu --threads 1"
                   " --limit-train 197 --limit-test 100 --no-progress --summary " + dir.file("s.json"),
               dir.file("log"));
  const auto j = nlohmann::json::parse(test::read_bytes(dir.file("s.json")));
  CHECK(j["optimizer_steps"] == 9);  // 17 global micro-steps in windows of 2
  CHECK_THAT(test::read_bytes(dir.file("log")), Contains("gives rank 1 a 1-sample micro-batch"));
}
#endif
#endif
