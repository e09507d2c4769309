/// @file tests/reliability/test_kill_checkpoint.cpp @brief SIGKILL of ember-train at random moments, many inside checkpoint writes: the last good checkpoint is never replaced by a partial one, and resuming from it ends bit-identical to an uninterrupted run.
#if defined(EMBER_TRAIN_SLOW_FSYNC_BINARY)
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <random>
#include <set>
#include <thread>

#include "core/error.h"
#include "data/fashion_mnist.h"
#include "examples/ember_train/checkpoint.h"
#include "tests/harness/datasets.h"
#include "tests/reliability/process.h"
#include "tests/train/temp_dir.h"

using namespace ember;
using namespace std::chrono_literals;

namespace {

/// Names of the temporary files write_file_atomically left beside `ck` (from writes that were killed).
std::set<std::string> temp_files(const std::filesystem::path& dir, const std::string& ck) {
  std::set<std::string> out;
  const std::string prefix = ck + ".tmp.";
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (n.rfind(prefix, 0) == 0) out.insert(n);
  }
  return out;
}

/// Tensors (names, dtypes, shapes, bytes) and metadata of two checkpoints are identical.
void require_bit_identical(const std::string& a, const std::string& b) {
  const SafetensorsContent x = load_safetensors(a), y = load_safetensors(b);
  CHECK(x.metadata == y.metadata);  // run position, RNG state and config
  REQUIRE(x.tensors.size() == y.tensors.size());
  for (size_t i = 0; i < x.tensors.size(); ++i) {
    const auto& [name, t] = x.tensors[i];
    INFO("tensor " << name);
    REQUIRE(y.tensors[i].first == name);
    const Tensor& u = y.tensors[i].second;
    REQUIRE(u.dtype() == t.dtype());
    REQUIRE(u.shape() == t.shape());
    CHECK(std::memcmp(u.data_ptr(), t.data_ptr(), t.nbytes()) == 0);
  }
}

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::atoi(v) : fallback;
}

}  // namespace

TEST_CASE("SIGKILL during checkpoint writes never corrupts the last good checkpoint; resuming ends bit-identical",
          "[reliability][kill][train]") {
  if (!test::have_fashion_mnist()) {
    WARN("Fashion-MNIST not installed; skipping");
    return;
  }
  test::TempDir dir;
  // CNN + BN (weights, BN buffers, AdamW state: 252 KB), 64 samples, micro 8 x accum 2: 8 steps over 2
  // epochs, a checkpoint after every step (and at the end).
  const std::vector<std::string> common{"--model", "cnn", "--micro-batch", "8", "--accum", "2", "--epochs", "2",
                                        "--limit-train", "64", "--limit-test", "20", "--device", "cpu",
                                        "--threads", "1", "--seed", "9", "--no-progress"};
  auto args = [&](std::vector<std::string> extra) {
    std::vector<std::string> a{EMBER_TRAIN_SLOW_FSYNC_BINARY};
    a.insert(a.end(), common.begin(), common.end());
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  const std::string ref = dir.file("ref.safetensors"), ck_name = "ck.safetensors", ck = dir.file(ck_name);
  const std::string log = dir.file("log.txt");
  {
    const test::ExitStatus st = test::run_process(args({"--save", ref}), {}, log);
    INFO(test::read_bytes(log));
    REQUIRE(st.exited_with(0));
  }
  // ember-train-slow-fsync: each checkpoint's fsync sleeps 3 ms per started 64 KiB (~15 ms for 252 KB)
  // before its rename, so that kills land inside writes often; the write logic is ember-train's.
  const std::vector<std::string> env{"EMBER_TEST_FSYNC_DELAY_US=3000", "OMP_NUM_THREADS=1"};
  const int attempts = env_int("EMBER_RELIABILITY_KILLS", 10);
  const unsigned seed = std::random_device{}();
  INFO("random seed " << seed);
  std::mt19937 rng(seed);
  int killed = 0, killed_in_write = 0, resumed = 0, completed = 0;
  int64_t last_steps = -1;
  for (int i = 0; i < attempts; ++i) {
    const bool have_ck = std::filesystem::exists(ck);
    std::vector<std::string> extra{"--save", ck, "--checkpoint-every", "1"};
    if (have_ck) extra.insert(extra.end(), {"--resume", ck}), ++resumed;
    const std::set<std::string> temps_before = temp_files(dir.path(), ck_name);
    test::Process child = test::start_process(args(extra), env, log);
    if (i % 3 != 2) {
      // Wait until the 1st, 2nd or 3rd checkpoint write of this run is in progress (a new temporary
      // file), then kill 0-20 ms later: inside the write, between fsync and rename, or just after it.
      const size_t nth = std::uniform_int_distribution<size_t>(1, 3)(rng);
      std::set<std::string> seen;
      const auto deadline = std::chrono::steady_clock::now() + 60s;
      while (child.running() && std::chrono::steady_clock::now() < deadline) {
        for (const std::string& t : temp_files(dir.path(), ck_name))
          if (temps_before.count(t) == 0) seen.insert(t);
        if (seen.size() >= nth) break;
        std::this_thread::sleep_for(200us);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(std::uniform_int_distribution<int>(0, 20000)(rng)));
    } else {
      // A random moment of the whole run (start-up, data loading, training, a write, the end).
      std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 1000)(rng)));
    }
    child.kill(SIGKILL);
    const test::ExitStatus st = child.wait();
    INFO("attempt " << i << ": " << test::read_bytes(log));
    if (st.killed_by(SIGKILL)) {
      ++killed;
      killed_in_write += temp_files(dir.path(), ck_name).size() > temps_before.size();
    } else {
      REQUIRE(st.exited_with(0));  // it ran to its end before the signal: nothing else is acceptable
    }
    // Whatever the moment, the checkpoint is absent (killed before the first one) or a complete, valid one
    // that is not older than the last one seen.
    if (std::filesystem::exists(ck)) {
      train::Checkpoint c;
      REQUIRE_NOTHROW(c = train::load_checkpoint(ck));
      REQUIRE(c.has_position);
      CHECK(c.position.optimizer_steps >= last_steps);
      last_steps = c.position.optimizer_steps;
    } else {
      CHECK(last_steps == -1);  // once written, it never disappears
    }
    if (!st.killed_by(SIGKILL)) {  // this chain of runs is complete: compare, then start a new chain
      ++completed;
      require_bit_identical(ref, ck);
      std::filesystem::remove(ck);
      last_steps = -1;
    }
  }
  // Finish the last chain without a kill.
  std::vector<std::string> extra{"--save", ck, "--checkpoint-every", "1"};
  if (std::filesystem::exists(ck)) extra.insert(extra.end(), {"--resume", ck}), ++resumed;
  const test::ExitStatus st = test::run_process(args(extra), env, log);
  INFO(test::read_bytes(log));
  REQUIRE(st.exited_with(0));
  CHECK(killed >= attempts / 2);
  CHECK(killed_in_write >= 1);  // the property is about kills inside writes: at least one must have happened
  CHECK(resumed >= 1);
  WARN("kill test: " << killed << " kills, " << killed_in_write << " inside a checkpoint write, " << resumed
                     << " resumes, " << completed << " chains completed early (seed " << seed << ")");
  require_bit_identical(ref, ck);
}
#endif
