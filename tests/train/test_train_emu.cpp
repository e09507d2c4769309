/// @file tests/train/test_train_emu.cpp @brief ember-train-emu --device cuda (the whole CUDA path on the emulator: kernels, cuBLAS/cuDNN/NCCL fakes, lazy streams) trains like ember-train --device cpu.
#if defined(EMBER_TRAIN_EMU_BINARY)
#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "data/fashion_mnist.h"
#include "tests/harness/datasets.h"
#include "tests/train/run_compare.h"

using namespace ember;

namespace {

/// Runs the CPU binary and the emulated-CUDA binary with `flags` and returns their summaries; the
/// checkpoints are dir/cpu.safetensors and dir/cuda.safetensors.
std::pair<nlohmann::json, nlohmann::json> run_both(const test::TempDir& dir, const std::string& flags) {
  const std::string common = flags + " --threads 1 --no-shuffle --no-progress --limit-test 64";
  auto outputs = [&](const std::string& tag) {
    return " --save " + dir.file(tag + ".safetensors") + " --summary " + dir.file(tag + ".json");
  };
  // The CPU run's GEMMs use OpenBLAS's SSE3 (Prescott) kernels on every machine, so the bounds below,
  // measured with them, hold whatever CPU runs the test. With its FMA kernels (Haswell, SkylakeX) the
  // CPU's sums differ from the cuBLAS fake's by ~1e-7 in other places, which here flips near-ties of the
  // CNN's max-pool: a gradient goes to another element and the weights differ by up to 7e-4 of their scale
  // after 3 steps (measured) although both backends are right.
  const std::string cpu_blas = "OPENBLAS_CORETYPE=Prescott ";
  test::run_ok(cpu_blas + EMBER_TRAIN_BINARY + " --device cpu" + common + outputs("cpu"), dir.file("cpu.log"));
  test::run_ok(cpu_blas + EMBER_TRAIN_EMU_BINARY + " --device cuda" + common + outputs("cuda"), dir.file("cuda.log"));
  return {nlohmann::json::parse(test::read_bytes(dir.file("cpu.json"))),
          nlohmann::json::parse(test::read_bytes(dir.file("cuda.json")))};
}

// Tolerance: both backends compute in float32 and the emulated kernels match the CPU's bitwise except
// the GEMMs (OpenBLAS vs the cuBLAS fake's double-accumulated reference loop, a different summation
// order): relative differences of ~1e-7 per GEMM output, grown through 3 SGD-momentum steps (measured
// at most 1.6e-6 of a tensor's largest entry). 2e-5 leaves a 10x margin; a wrong kernel is off by
// far more. The absolute floor 1e-7 covers single entries whose exact value is 0. Biases feeding batch
// norm have an exact gradient of 0: what is computed is the rounding noise of a sum over N*H*W terms
// (measured up to 8.5e-7 in their momentum buffers), bounded here by 1e-5 absolute.
constexpr double kRel = 2e-5;
test::Closeness closeness(std::vector<std::string> zero_grad) { return {kRel, 1e-7, std::move(zero_grad), 1e-5}; }

}  // namespace

TEST_CASE("ember-train-emu --device cuda trains the CNN with batch norm as the CPU does", "[train][e2e][emu]") {
  if (!test::have_fashion_mnist()) {
    WARN("Fashion-MNIST not installed; skipping");
    return;
  }
  test::TempDir dir;
  const auto [cpu, cuda] = run_both(dir, " --model cnn --optimizer sgd --clip-norm 5 --micro-batch 16 --accum 2"
                                         " --steps 3 --limit-train 96");
  CHECK(cuda["device"] == "cuda:0");
  CHECK(cpu["device"] == "cpu");
  CHECK(cuda["optimizer_steps"] == 3);
  CHECK(cuda["final_loss"].get<double>() == Approx(cpu["final_loss"].get<double>()).epsilon(kRel));
  test::check_checkpoints_close(dir.file("cpu.safetensors"), dir.file("cuda.safetensors"),
                                closeness({"conv1.bias", "conv2.bias"}));
  // Ember's runtime counted the loop: one host sync per window (its outcome) and one at the end, clipping
  // included; the CPU backend has none.
  const auto windows = cuda["optimizer_steps"].get<int64_t>() + cuda["skipped_steps"].get<int64_t>();
  CHECK(cuda["host_syncs"].get<int64_t>() <= windows + 1);
  CHECK(cuda["kernel_launches"].get<int64_t>() > 20 * windows);
  CHECK(cpu["host_syncs"] == 0);
}

TEST_CASE("ember-train-emu --device cuda trains the MLP with window-merged batch norm as the CPU does",
          "[train][e2e][emu]") {
  if (!test::have_fashion_mnist()) {
    WARN("Fashion-MNIST not installed; skipping");
    return;
  }
  test::TempDir dir;
  const auto [cpu, cuda] = run_both(dir, " --model mlp --bn-stats window --optimizer sgd --micro-batch 16 --accum 3"
                                         " --steps 3 --limit-train 160");
  CHECK(cuda["optimizer_steps"] == 3);
  CHECK(cuda["final_loss"].get<double>() == Approx(cpu["final_loss"].get<double>()).epsilon(kRel));
  test::check_checkpoints_close(dir.file("cpu.safetensors"), dir.file("cuda.safetensors"),
                                closeness({"fc1.bias", "fc2.bias"}));
}

#ifdef EMBER_MPIEXEC
TEST_CASE("mpirun -np 2 ember-train-emu --device cuda over the emulated NCCL equals one process (SyncBatchNorm)",
          "[train][e2e][emu][mpi]") {
  if (!test::have_fashion_mnist()) {
    WARN("Fashion-MNIST not installed; skipping");
    return;
  }
  test::TempDir dir;
  // Two emulated GPUs, one per rank; the CNN with SyncBatchNorm: each BN layer normalizes over both
  // ranks' samples, so 2 ranks x micro 8 compute what one process with micro 16 does.
  const std::string common = std::string(EMBER_TRAIN_EMU_BINARY) +
                             " --device cuda --model cnn --norm sync --optimizer sgd --accum 2 --steps 3"
                             " --limit-train 96 --limit-test 64 --threads 1 --no-shuffle --no-progress";
  auto run = [&](const std::string& cmd, const std::string& tag) {
    test::run_ok("EMBER_EMU_DEVICES=2 " + cmd + " --save " + dir.file(tag + ".safetensors") + " --summary " +
                     dir.file(tag + ".json"),
                 dir.file(tag + ".log"));
  };
  run(common + " --micro-batch 16", "single");
  run(test::mpirun(2) + common + " --micro-batch 8", "nccl");
  const auto single = nlohmann::json::parse(test::read_bytes(dir.file("single.json")));
  const auto nccl = nlohmann::json::parse(test::read_bytes(dir.file("nccl.json")));
  CHECK(nccl["world_size"] == 2);
  CHECK(nccl["effective_batch"] == single["effective_batch"]);
  CHECK(nccl["optimizer_steps"] == 3);
  CHECK(nccl["allreduce_calls"] == 3);  // the CNN's gradients fit one bucket: one all-reduce per window
  CHECK(single["allreduce_calls"] == 0);
  CHECK_THAT(test::read_bytes(dir.file("nccl.log")), Catch::Contains("on cuda"));
  CHECK(nccl["final_loss"].get<double>() == Approx(single["final_loss"].get<double>()).epsilon(kRel));
  // Same samples per window and per BN normalization, summed in another order (NCCL's rank order, the
  // statistics all-reduce): the tolerances of the CPU comparison.
  test::check_checkpoints_close(dir.file("single.safetensors"), dir.file("nccl.safetensors"),
                                closeness({"conv1.bias", "conv2.bias"}));
}
#endif
#endif
