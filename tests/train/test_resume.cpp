/// @file tests/train/test_resume.cpp @brief Checkpoints: a resumed run ends bit-identical to an uninterrupted one; mismatched or broken files are rejected.
// Compiled when the training loop is built (examples/CMakeLists.txt: nn and optim present).
#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "core/error.h"
#include "core/safetensors.h"
#include "data/fashion_mnist.h"
#include "examples/ember_train/train.h"
#include "tests/harness/datasets.h"
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
  for (const char* key : {"epoch", "micro_step", "optimizer_steps", "micro_steps", "rng_offset"}) {
    INFO("metadata " << key);
    CHECK(x.metadata.at(key) == y.metadata.at(key));
  }
}

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
