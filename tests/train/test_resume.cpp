/// @file tests/train/test_resume.cpp @brief Checkpoints: a resumed run ends bit-identical to an uninterrupted one (SGD momentum, short windows, window BN stats, clipping, skipped steps, 3 ranks) and continues its --metrics file; mismatched settings are rejected or warned about; broken files are rejected.
// Compiled when the training loop is built (examples/CMakeLists.txt: nn and optim present).
#include <catch2/catch.hpp>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/safetensors.h"
#include "data/fashion_mnist.h"
#include "examples/ember_train/run.h"
#include "examples/ember_train/train.h"
#include "tests/harness/datasets.h"
#include "tests/train/run_compare.h"
#include "tests/train/temp_dir.h"

using namespace ember;
using namespace ember::train;
using Catch::Matchers::Contains;

namespace {

/// CNN with BN, shuffled, 96 samples: 12 micro-batches of 8 per epoch, windows of 3 -> 4 steps/epoch.
TrainOptions cnn_run() {
  TrainOptions o;
  o.model = ModelKind::CNN;
  o.micro_batch = 8;
  o.accum = 3;
  o.epochs = 2;
  o.device = DeviceChoice::CPU;
  o.limit_train = 96;
  o.limit_test = 50;
  o.progress = false;
  o.seed = 5;
  return o;
}

/// Every tensor of two files, byte for byte (names, dtypes, shapes and data).
void require_bit_identical(const std::string& a, const std::string& b) {
  SafetensorsContent x = load_safetensors(a), y = load_safetensors(b);
  REQUIRE(x.tensors.size() == y.tensors.size());
  for (const auto& [name, t] : x.tensors) {
    INFO("tensor " << name);
    Tensor u = y.find(name);
    REQUIRE(u.defined());
    REQUIRE(u.dtype() == t.dtype());
    REQUIRE(u.shape() == t.shape());
    CHECK(std::memcmp(u.data_ptr(), t.data_ptr(), t.nbytes()) == 0);
  }
  for (const char* key : {"epoch", "micro_step", "optimizer_steps", "micro_steps", "skipped_steps", "rng_offset"}) {
    INFO("metadata " << key);
    CHECK(x.metadata.at(key) == y.metadata.at(key));
  }
}

/// MLP with BN, shuffled, SGD with momentum 0.9: `samples` training samples in micro-batches of 8, windows
/// of 3, 2 epochs. Small enough that a run takes a fraction of a second.
TrainOptions mlp_run(int64_t samples = 96) {
  TrainOptions o;
  o.model = ModelKind::MLP;
  o.optimizer = OptimizerKind::SGD;
  o.micro_batch = 8;
  o.accum = 3;
  o.epochs = 2;
  o.device = DeviceChoice::CPU;
  o.limit_train = samples;
  o.limit_test = 20;
  o.progress = false;
  o.seed = 11;
  return o;
}

/// The cells of each data row of a --metrics CSV (header checked and left out).
std::vector<std::vector<std::string>> metrics_rows(const std::string& path) {
  std::istringstream in(test::read_bytes(path));
  std::string line;
  REQUIRE(std::getline(in, line));
  CHECK(line == "step,epoch,samples,loss,lr,grad_norm,skipped,elapsed_s");
  std::vector<std::vector<std::string>> rows;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::istringstream cs(line);
    for (std::string c; std::getline(cs, c, ',');) cells.push_back(c);
    REQUIRE(cells.size() == 8);
    rows.push_back(cells);
  }
  return rows;
}

/// Equal rows, except elapsed_s (wall time, and a resumed process starts its clock again).
void require_same_rows(const std::vector<std::vector<std::string>>& a, const std::vector<std::vector<std::string>>& b) {
  REQUIRE(a.size() == b.size());
  for (size_t r = 0; r < a.size(); ++r) {
    INFO("metrics row " << r + 1);
    for (size_t c = 0; c + 1 < a[r].size(); ++c) CHECK(a[r][c] == b[r][c]);
  }
}

/// `o` uninterrupted, and for each of `stops` `o` stopped by --steps after that many optimizer steps and
/// resumed, all with --save and --metrics (the resumed run continues the first part's metrics file): the
/// final checkpoints are bit-identical and the metrics files have the same rows. Returns the uninterrupted
/// run's rows; its checkpoint is dir/full.safetensors, the last resumed one dir/resumed.safetensors.
std::vector<std::vector<std::string>> require_resume_identical(const TrainOptions& o, const std::vector<int64_t>& stops,
                                                               const test::TempDir& dir) {
  std::ostringstream log;
  TrainOptions full = o;
  full.save = dir.file("full.safetensors");
  full.metrics = dir.file("full.csv");
  const RunSummary a = run_training(full, log);
  const auto rows = metrics_rows(full.metrics);
  for (int64_t stop : stops) {
    INFO("interrupted after step " << stop);
    REQUIRE(stop < a.optimizer_steps);
    TrainOptions first = o;
    first.steps = stop;
    first.save = dir.file("part.safetensors");
    first.metrics = dir.file("resumed.csv");
    REQUIRE(run_training(first, log).optimizer_steps == stop);
    TrainOptions rest = o;
    rest.resume = first.save;
    rest.save = dir.file("resumed.safetensors");
    rest.metrics = first.metrics;
    const RunSummary c = run_training(rest, log);
    INFO(log.str());
    CHECK(c.optimizer_steps == a.optimizer_steps);
    CHECK(c.skipped_steps == a.skipped_steps);
    CHECK(c.micro_steps == a.micro_steps);
    CHECK(c.test_accuracy == a.test_accuracy);
    CHECK(c.final_loss == a.final_loss);
    require_bit_identical(full.save, rest.save);
    require_same_rows(rows, metrics_rows(rest.metrics));
  }
  return rows;
}

/// An output stream for the run's log that, at every "... step K/N ..." line, records how many rows the
/// --metrics file has at that moment (what a kill right then would leave behind).
class MetricsSnoop : public std::streambuf {
 public:
  explicit MetricsSnoop(std::string metrics) : metrics_(std::move(metrics)) {}
  std::map<int64_t, size_t> rows_at_step;  ///< step of the log line -> rows of the file then

 private:
  int overflow(int c) override {
    if (c != '\n') {
      line_ += static_cast<char>(c);
      return c;
    }
    const size_t at = line_.find("  step ");
    if (at != std::string::npos) {
      const std::string text = test::read_bytes(metrics_);
      const auto lines = static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
      rows_at_step[std::stoll(line_.substr(at + 7))] = lines == 0 ? 0 : lines - 1;
    }
    line_.clear();
    return c;
  }
  std::string metrics_, line_;
};

}  // namespace

TEST_CASE("--resume continues a run bit-identically (CNN + BN, shuffled, across an epoch)", "[train][resume]") {
  if (!test::have_fashion_mnist()) {
    WARN("Fashion-MNIST not installed; skipping");
    return;
  }
  test::TempDir dir;
  std::ostringstream log;
  TrainOptions full = cnn_run();
  full.save = dir.file("full.safetensors");
  const RunSummary a = run_training(full, log);
  REQUIRE(a.optimizer_steps == 8);

  TrainOptions first = cnn_run();  // "interrupted" after 3 of the 4 steps of epoch 1
  first.steps = 3;
  first.save = dir.file("part.safetensors");
  run_training(first, log);

  TrainOptions rest = cnn_run();
  rest.resume = dir.file("part.safetensors");
  rest.save = dir.file("resumed.safetensors");
  const RunSummary c = run_training(rest, log);
  CHECK(c.optimizer_steps == 8);
  CHECK(c.micro_steps == 24);
  CHECK(c.test_accuracy == a.test_accuracy);
  CHECK(c.final_loss == a.final_loss);
  require_bit_identical(full.save, rest.save);
  // The checkpoint holds optimizer state and the BN buffers under PyTorch's names.
  SafetensorsContent ck = load_safetensors(full.save);
  CHECK(ck.find("conv1.weight").shape() == Shape{16, 1, 3, 3});
  CHECK(ck.find("bn2.running_var").shape() == Shape{32});
  CHECK(ck.find("fc.weight").shape() == Shape{10, 1568});
  CHECK(ck.find("bn1.num_batches_tracked").dtype() == DType::i64);
  bool has_optim = false;
  for (const auto& [name, t] : ck.tensors) has_optim = has_optim || name.rfind("optim.", 0) == 0;
  CHECK(has_optim);
}

TEST_CASE("--resume rejects mismatched settings, plain weights and broken files", "[train][resume]") {
  if (!test::have_fashion_mnist()) return;
  test::TempDir dir;
  std::ostringstream log;
  TrainOptions o = cnn_run();
  o.steps = 1;
  o.save = dir.file("ck.safetensors");
  run_training(o, log);

  TrainOptions r = cnn_run();
  r.resume = o.save;
  r.accum = 2;
  CHECK_THROWS_WITH(run_training(r, log), Contains("other settings") && Contains("accum: checkpoint 3, now 2"));

  // A weights-only file (as PyTorch's save_file writes) is fine for --init but not for --resume.
  SafetensorsContent c = load_safetensors(o.save);
  NamedTensors weights;
  for (auto& [name, t] : c.tensors)
    if (name.rfind("optim.", 0) != 0) weights.emplace_back(name, t);
  save_safetensors(dir.file("weights.safetensors"), weights);
  r = cnn_run();
  r.resume = dir.file("weights.safetensors");
  CHECK_THROWS_WITH(run_training(r, log), Contains("not an ember-train checkpoint"));
  r = cnn_run();
  r.init = dir.file("weights.safetensors");
  r.steps = 1;
  CHECK_NOTHROW(run_training(r, log));

  const std::string bytes = test::read_bytes(o.save);
  test::write_bytes(dir.file("cut.safetensors"), bytes.substr(0, bytes.size() - 100));
  r = cnn_run();
  r.resume = dir.file("cut.safetensors");
  CHECK_THROWS_WITH(run_training(r, log), Contains("cut.safetensors") && Contains("truncated"));
}

TEST_CASE("--resume is bit-identical with SGD momentum and a short last window", "[train][resume]") {
  if (!test::have_fashion_mnist()) return;
  // 76 samples: 10 micro-batches per epoch, the last of 4 samples; windows 3 + 3 + 3 + 1 (a short window
  // closed by flush) -> 4 steps per epoch. Interrupted before the short window, and right after it.
  test::TempDir dir;
  const auto rows = require_resume_identical(mlp_run(76), {3, 4}, dir);
  REQUIRE(rows.size() == 8);
  CHECK(rows[3][2] == "4");  // the short window's samples
  CHECK(rows[7][2] == "4");
  const Checkpoint ck = load_checkpoint(dir.file("resumed.safetensors"));
  size_t buffers = 0;  // a momentum buffer per parameter (fc1-3, bn1-2: weight and bias)
  for (const auto& [name, t] : ck.optim) buffers += name.ends_with(".momentum_buffer");
  CHECK(buffers == 10);
}

TEST_CASE("--resume is bit-identical with --bn-stats window", "[train][resume]") {
  if (!test::have_fashion_mnist()) return;
  test::TempDir dir;
  TrainOptions o = mlp_run();
  o.bn_stats = BnStats::Window;
  o.optimizer = OptimizerKind::AdamW;
  require_resume_identical(o, {2}, dir);
  // Window-merged statistics: one running-statistics update per optimizer step (8), not per micro-batch (24).
  const Checkpoint ck = load_checkpoint(dir.file("resumed.safetensors"));
  for (const auto& [name, t] : ck.model)
    if (name.ends_with("num_batches_tracked")) CHECK(t.to_vector<int64_t>() == std::vector<int64_t>{8});
}

TEST_CASE("--resume is bit-identical with --clip-norm clipping", "[train][resume]") {
  if (!test::have_fashion_mnist()) return;
  test::TempDir dir;
  TrainOptions o = mlp_run();
  o.clip_norm = 0.05;
  const auto rows = require_resume_identical(o, {5}, dir);
  int clipped = 0;  // windows whose norm exceeded the limit (so clipping changed the update), both sides of the stop
  for (size_t r = 0; r < rows.size(); ++r) clipped += std::stod(rows[r][5]) > o.clip_norm;
  CHECK(clipped == static_cast<int>(rows.size()));
}

TEST_CASE("--resume is bit-identical across skipped (non-finite) steps", "[train][resume]") {
  if (!test::have_fashion_mnist()) return;
  test::TempDir dir;
  TrainOptions o = mlp_run();
  // Window 1 (micro-step 2) is skipped before the interruption, window 5 (micro-step 14) after it.
  o.inject_non_finite = {{.micro_step = 2, .value = std::numeric_limits<double>::quiet_NaN()},
                         {.micro_step = 14, .value = std::numeric_limits<double>::infinity()}};
  const auto rows = require_resume_identical(o, {2}, dir);
  REQUIRE(rows.size() == 8);  // 8 windows, 6 optimizer steps
  for (size_t r = 0; r < rows.size(); ++r) CHECK(rows[r][6] == (r == 0 || r == 4 ? "1" : "0"));
  const Checkpoint ck = load_checkpoint(dir.file("resumed.safetensors"));
  CHECK(ck.position.skipped_steps == 2);
  CHECK(ck.position.optimizer_steps == 6);
}

TEST_CASE("--resume warns when the thread count or the device differ, and continues", "[train][resume]") {
  if (!test::have_fashion_mnist()) return;
  const int threads_before = omp_get_max_threads();
  test::TempDir dir;
  std::ostringstream log;
  TrainOptions o = mlp_run();
  o.threads = 1;
  o.steps = 1;
  o.save = dir.file("ck.safetensors");
  run_training(o, log);
  const Checkpoint saved = load_checkpoint(o.save);
  CHECK(saved.config.at("config.threads") == "1");
  CHECK(saved.config.at("config.device") == "cpu");

  auto resume = [&](const std::string& file, int threads) {
    TrainOptions r = mlp_run();
    r.threads = threads;
    r.resume = file;
    r.steps = 2;
    std::ostringstream out;
    CHECK(run_training(r, out).optimizer_steps == 2);  // a warning, not an error
    return out.str();
  };
  CHECK_THAT(resume(o.save, 1), !Contains("warning"));
  const std::string promise = "bit-identical to an uninterrupted run only with the same device and thread count";
  CHECK_THAT(resume(o.save, 2),
             Contains("ember-train: warning: --resume " + o.save + ": threads: checkpoint 1, now 2") && Contains(promise));

  // Written on a GPU, resumed on the CPU, by a version that did not record the thread count yet.
  SafetensorsContent c = load_safetensors(o.save);
  c.metadata["config.device"] = "cuda";
  c.metadata.erase("config.threads");
  save_safetensors(dir.file("gpu.safetensors"), c.tensors, c.metadata);
  CHECK_THAT(resume(dir.file("gpu.safetensors"), 1), Contains("device: checkpoint cuda, now cpu") && Contains(promise) &&
                                                         Contains("threads: checkpoint (absent), now 1"));

  // Any other difference is an error, also a setting the checkpoint has and this run does not.
  c = load_safetensors(o.save);
  c.metadata["config.future_flag"] = "on";
  save_safetensors(dir.file("newer.safetensors"), c.tensors, c.metadata);
  TrainOptions r = mlp_run();
  r.threads = 1;
  r.resume = dir.file("newer.safetensors");
  CHECK_THROWS_WITH(run_training(r, log), Contains("other settings") && Contains("future_flag: checkpoint on, now (absent)"));
  configure_threads(threads_before);
}

TEST_CASE("--resume continues the --metrics file: earlier rows kept up to the checkpoint, later ones redone",
          "[train][resume]") {
  if (!test::have_fashion_mnist()) return;
  test::TempDir dir;
  std::ostringstream log;
  TrainOptions full = mlp_run();
  full.metrics = dir.file("full.csv");
  run_training(full, log);
  TrainOptions o = mlp_run();  // a checkpoint at step 2 ...
  o.steps = 2;
  o.save = dir.file("ck.safetensors");
  run_training(o, log);
  o = mlp_run();  // ... and a metrics file that went on to step 5 (a kill after step 5 loses the checkpoint of step 4)
  o.steps = 5;
  o.metrics = dir.file("m.csv");
  run_training(o, log);
  REQUIRE(metrics_rows(o.metrics).size() == 5);
  TrainOptions r = mlp_run();
  r.resume = dir.file("ck.safetensors");
  r.metrics = o.metrics;
  std::ostringstream out;
  run_training(r, out);
  CHECK_THAT(out.str(), Contains("--metrics " + r.metrics + ": continuing its 2 row(s) of the 2 window(s) before the "
                                 "checkpoint; 3 later row(s) dropped (redone now)"));
  require_same_rows(metrics_rows(full.metrics), metrics_rows(r.metrics));  // one header, 8 rows
  // A resume to a metrics file that did not exist starts it at the checkpoint.
  r.metrics = dir.file("new.csv");
  run_training(r, log);
  const auto rows = metrics_rows(r.metrics);
  REQUIRE(rows.size() == 6);
  CHECK(rows[0][0] == "3");
  // A file that is not an ember-train metrics CSV is not overwritten.
  test::write_bytes(dir.file("notes.txt"), "my notes\n");
  r.metrics = dir.file("notes.txt");
  CHECK_THROWS_WITH(run_training(r, log), Contains("notes.txt") && Contains("not an ember-train metrics CSV"));
  CHECK(test::read_bytes(r.metrics) == "my notes\n");
}

TEST_CASE("--metrics is written before each --checkpoint-every checkpoint, so a killed run's file reaches it",
          "[train][resume]") {
  if (!test::have_fashion_mnist()) return;
  test::TempDir dir;
  TrainOptions o = mlp_run();  // 8 steps, a checkpoint every 3
  o.save = dir.file("ck.safetensors");
  o.metrics = dir.file("m.csv");
  o.checkpoint_every = 3;
  o.log_every = 1;
  MetricsSnoop snoop(o.metrics);
  std::ostream log(&snoop);
  run_training(o, log);
  // The log line of step K comes before that step's checkpoint: the file then holds the rows up to the
  // last checkpoint (3 or 6), never fewer (the end of the run writes all 8).
  const std::map<int64_t, size_t> want{{1, 0}, {2, 0}, {3, 0}, {4, 3}, {5, 3}, {6, 3}, {7, 6}, {8, 6}};
  CHECK(snoop.rows_at_step == want);
  CHECK(metrics_rows(o.metrics).size() == 8);
}

#if defined(EMBER_TRAIN_BINARY) && defined(EMBER_MPIEXEC)
TEST_CASE("--resume under mpirun -np 3 is bit-identical to the uninterrupted 3-rank run", "[train][resume][mpi]") {
  if (!test::have_fashion_mnist()) return;
  test::TempDir dir;
  // 116 samples, micro 4 x 3 ranks: 9 full global micro-steps and one of 8 samples (rank 2 gets none);
  // windows 3 + 3 + 3 + 1 -> 4 steps per epoch, 2 epochs. BN, SGD with momentum, shuffled.
  const std::string common = test::mpirun(3) + EMBER_TRAIN_BINARY +
                             " --model mlp --optimizer sgd --micro-batch 4 --accum 3 --epochs 2 --seed 3 --device cpu"
                             " --threads 1 --limit-train 116 --limit-test 20 --no-progress";
  test::run_ok(common + " --save " + dir.file("full.safetensors") + " --metrics " + dir.file("full.csv"),
               dir.file("full.log"));
  const std::string part = " --save " + dir.file("part.safetensors") + " --metrics " + dir.file("resumed.csv");
  test::run_ok(common + " --steps 3" + part, dir.file("part.log"));
  test::run_ok(common + " --resume " + dir.file("part.safetensors") + " --save " + dir.file("resumed.safetensors") +
                   " --metrics " + dir.file("resumed.csv"),
               dir.file("resumed.log"));
  CHECK_THAT(test::read_bytes(dir.file("resumed.log")), Contains("resumed from") && !Contains("warning"));
  require_bit_identical(dir.file("full.safetensors"), dir.file("resumed.safetensors"));
  const auto rows = metrics_rows(dir.file("full.csv"));
  REQUIRE(rows.size() == 8);
  CHECK(rows[3][2] == "8");  // the short window: the last global micro-step's 8 samples
  require_same_rows(rows, metrics_rows(dir.file("resumed.csv")));
}
#endif
