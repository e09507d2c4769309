/// @file tests/distributed/mpi/test_mpi_window_state.cpp @brief Window-end state over 3 ranks: window-merged BatchNorm statistics cover the whole effective batch (checked against a naive reference) and a skipped window is discarded; buffers and optimizer state are bitwise identical on every rank after each step; flush() with different pending counts per rank.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>

#include "optim/grad_accumulator.h"
#include "optim/sgd.h"
#include "tests/distributed/mlp_fixture.h"
#include "tests/distributed/mpi/world.h"

using namespace ember;
using namespace ember::distributed;
using namespace ember::test::dist;

namespace {

/// Mean squared error of samples [begin, end); `poison` multiplies the inputs by NaN.
Tensor mean_loss(nn::Module& model, int64_t begin, int64_t end, bool poison = false) {
  Tensor x = sample_inputs(begin, end);
  if (poison) x = x * std::numeric_limits<double>::quiet_NaN();
  Tensor d = model(x) - sample_targets(begin, end);
  return sum(d * d) * (1.0 / static_cast<double>(end - begin));
}

/// One window of micro 3 x accum 2 per rank: rank r's micro-batch k of window s holds samples
/// s * 18 + k * 9 + r * 3 + [0, 3), so the window's 18 samples are s * 18 + [0, 18) over all ranks.
void run_window(nn::Module& model, optim::GradAccumulator& acc, int64_t s, int poison_rank = -1) {
  const int rank = world().rank();
  for (int64_t k = 0; k < 2; ++k) {
    const int64_t b = s * 18 + k * 9 + rank * 3;
    acc.backward(mean_loss(model, b, b + 3, rank == poison_rank && k == 1), 3);
  }
}

/// Every tensor's values, in order, as doubles (f32 and i64 convert exactly).
std::vector<double> flatten(const std::vector<NamedTensors>& parts) {
  std::vector<double> out;
  for (const NamedTensors& part : parts)
    for (const auto& [name, t] : part) {
      const auto v = t.to_vector<double>();
      out.insert(out.end(), v.begin(), v.end());
    }
  return out;
}

/// True on every rank when every rank holds exactly rank 0's bytes.
bool same_on_all_ranks(const std::vector<double>& v) {
  ProcessGroup& pg = world();
  Tensor root = from_vector(v, {static_cast<int64_t>(v.size())}, TensorOptions{}.set_dtype(DType::f64));
  pg.broadcast(root, 0);
  const auto r = root.to_vector<double>();
  Tensor differs = from_vector(std::vector<int64_t>{std::memcmp(r.data(), v.data(), v.size() * sizeof(double)) != 0},
                               {1}, TensorOptions{}.set_dtype(DType::i64));
  pg.all_reduce(differs);
  return differs.item() == 0.0;
}

/// The naive reference of a BN layer's running statistics (momentum 0.1): per-channel mean and unbiased
/// variance of h = x w1 + b1 over the window's 18 samples, in double with plain loops.
struct RunningReference {
  std::vector<double> mean = std::vector<double>(6, 0.0), var = std::vector<double>(6, 1.0);

  void update(int64_t s, const std::vector<double>& w1, const std::vector<double>& b1) {
    const std::vector<double> x = sample_inputs(s * 18, s * 18 + 18).to_vector<double>();
    std::vector<double> h(18 * 6);
    for (size_t i = 0; i < 18; ++i)
      for (size_t c = 0; c < 6; ++c) {
        double acc = b1[c];
        for (size_t k = 0; k < 4; ++k) acc += x[i * 4 + k] * w1[k * 6 + c];
        h[i * 6 + c] = acc;
      }
    for (size_t c = 0; c < 6; ++c) {
      double mu = 0.0, m2 = 0.0;
      for (size_t i = 0; i < 18; ++i) mu += h[i * 6 + c];
      mu /= 18.0;
      for (size_t i = 0; i < 18; ++i) m2 += (h[i * 6 + c] - mu) * (h[i * 6 + c] - mu);
      mean[c] = 0.9 * mean[c] + 0.1 * mu;
      var[c] = 0.9 * var[c] + 0.1 * m2 / 17.0;
    }
  }
};

void check_running(const Tensor& got, const std::vector<double>& want, const char* what) {
  // The BN input is an f32 GEMM of 4 terms (relative error a few 1e-8), its statistics are f32 merged
  // in double and the running update is f32: agreement to ~1e-7 relative, asserted at 1e-5 + 1e-6
  // absolute. Statistics over one rank's 6 samples instead of all 18 differ by ~1e-1.
  const auto g = got.to_vector<double>();
  REQUIRE(g.size() == want.size());
  for (size_t c = 0; c < g.size(); ++c) {
    INFO(what << "[" << c << "] on rank " << world().rank() << ": " << g[c] << " vs reference " << want[c]);
    CHECK(std::abs(g[c] - want[c]) <= 1e-6 + 1e-5 * std::abs(want[c]));
  }
}

}  // namespace

TEST_CASE("window-merged BN over 3 ranks: the first BN layer's running stats are the whole effective batch's, "
          "identical on every rank; a skipped window is discarded",
          "[mpi][bn]") {
  ProcessGroup& pg = world();
  BnMlp model(500, /*window_stats=*/true);
  DataParallel dp(world_ptr(), model, DataParallelOptions{.bucket_bytes = 64});
  optim::SGD opt(model.parameters(), {.lr = 0.1, .momentum = 0.9});
  optim::GradAccumulator acc(model, opt, {.accum_steps = 2});
  acc.set_comm_hook(&dp);
  RunningReference ref;
  const auto bn_state = [&] { return flatten({model.bn1->named_buffers(), model.bn2->named_buffers()}); };
  int64_t s = 0;
  for (; s < 2; ++s) {
    const auto w1 = model.w1.to_vector<double>(), b1 = model.b1.to_vector<double>();  // the window's weights
    const int64_t reduces_before = pg.stats().all_reduce;
    run_window(model, acc, s);
    REQUIRE(acc.optimizer_steps() == s + 1);
    ref.update(s, w1, b1);
    check_running(model.bn1->running_mean, ref.mean, "bn1.running_mean");
    check_running(model.bn1->running_var, ref.var, "bn1.running_var");
    CHECK(model.bn1->num_batches_tracked.item() == static_cast<double>(s + 1));  // one update per window
    // The buckets, the touched flags (set_to_none), then one all-reduce for both BN layers' windows;
    // their buffers are not rebroadcast.
    const int64_t touched = acc.options().set_to_none ? 1 : 0;
    CHECK(pg.stats().all_reduce - reduces_before == static_cast<int64_t>(dp.buckets().size()) + touched + 1);
    CHECK(same_on_all_ranks(bn_state()));
    CHECK(dp.stats().window_stat_merges == s + 1);
    CHECK(dp.stats().buffer_broadcasts == 0);
  }
  // A NaN in rank 1's last micro-batch: every rank skips, and no rank merges the window.
  const auto before = bn_state();
  run_window(model, acc, s, /*poison_rank=*/1);
  CHECK(acc.last_step_skipped());
  CHECK(bn_state() == before);
  CHECK(model.bn1->window().count == 0);
  CHECK(model.bn1->window_batches() == 0);
  CHECK(dp.stats().window_stat_merges == 2);
  // The next window starts clean and merges over all ranks again.
  ++s;
  const auto w1 = model.w1.to_vector<double>(), b1 = model.b1.to_vector<double>();
  run_window(model, acc, s);
  CHECK_FALSE(acc.last_step_skipped());
  ref.update(s, w1, b1);
  check_running(model.bn1->running_mean, ref.mean, "bn1.running_mean after the skipped window");
  check_running(model.bn1->running_var, ref.var, "bn1.running_var after the skipped window");
  CHECK(model.bn1->num_batches_tracked.item() == 3.0);
  CHECK(same_on_all_ranks(bn_state()));
}

TEST_CASE("window_stats on one rank only is an error on every rank, not a mismatched all-reduce", "[mpi][bn]") {
  BnMlp model(650, /*window_stats=*/world().rank() == 2);
  CHECK_THROWS_WITH(DataParallel(world_ptr(), model),
                    Catch::Contains("parameters or buffers differ across ranks") &&
                        Catch::Contains("and 0 window-merged BN channels; rank 1") &&
                        Catch::Contains("and 9 window-merged BN channels"));  // rank 2: bn1 (6) + bn2 (3)
  world().barrier();
}

TEST_CASE("DataParallel: parameters, buffers and optimizer state are bitwise identical on every rank after each step",
          "[mpi][bn]") {
  // Per-micro-batch BN statistics: each rank's running stats move with its own samples in forward, so
  // without the window-end rebroadcast from rank 0 they differ across ranks.
  BnMlp model(600, /*window_stats=*/false);
  DataParallel dp(world_ptr(), model, DataParallelOptions{.bucket_bytes = 64});
  optim::SGD opt(model.parameters(), {.lr = 0.1, .momentum = 0.9});
  optim::GradAccumulator acc(model, opt, {.accum_steps = 2});
  acc.set_comm_hook(&dp);
  for (int64_t s = 0; s < 3; ++s) {
    run_window(model, acc, s);
    INFO("after step " << s + 1);
    CHECK(same_on_all_ranks(flatten({model.state_dict()})));
    CHECK(same_on_all_ranks(flatten({opt.state_dict()})));
    CHECK(model.bn1->num_batches_tracked.item() == 2.0 * static_cast<double>(s + 1));
  }
  CHECK(!opt.state_dict().empty());
  CHECK(dp.stats().buffer_broadcasts == 3 * 2);  // per window: the f32 running stats, the i64 counters
  CHECK(dp.stats().window_stat_merges == 0);
}

TEST_CASE("flush() with 2, 1 and 0 pending micro-batches on ranks 0, 1, 2 ends one window everywhere, equal to "
          "the large batch",
          "[mpi]") {
  ProcessGroup& pg = world();
  MlpModule model(700), ref(700);
  DataParallel dp(world_ptr(), model, DataParallelOptions{.bucket_bytes = 64});
  optim::SGD opt(model.parameters(), {.lr = 0.3}), ref_opt(ref.parameters(), {.lr = 0.3});
  optim::GradAccumulator acc(model, opt, {.accum_steps = 3}), ref_acc(ref, ref_opt, {.accum_steps = 1});
  acc.set_comm_hook(&dp);
  // Rank 0: samples [0, 2) and [2, 4); rank 1: [4, 6); rank 2: nothing.
  const int64_t pending = 2 - pg.rank();
  for (int64_t k = 0; k < pending; ++k) {
    const int64_t b = pg.rank() == 0 ? 2 * k : 4;
    CHECK_FALSE(acc.backward(mean_loss(model, b, b + 2), 2));
  }
  CHECK(acc.flush());  // every rank ends the window, rank 2 with no samples
  CHECK(acc.optimizer_steps() == 1);
  CHECK(acc.micro_steps() == pending);
  CHECK(ref_acc.backward(mean_loss(ref, 0, 6), 6));
  const auto got = model.parameters(), want = ref.parameters();
  for (size_t i = 0; i < got.size(); ++i) {
    std::string why;
    // fp32 sums of 6 per-sample gradients regrouped by rank: a few ulps.
    const bool close = ember::test::allclose(got[i], want[i], 1e-5, 1e-6, &why);
    INFO("parameter " << i << " on rank " << pg.rank() << ": " << why);
    CHECK(close);
  }
  CHECK_FALSE(acc.flush());  // nothing pending on any rank: no rank ends a window
  CHECK(dp.stats().windows == 1);
}
