/// @file tests/distributed/mpi/test_mpi_reference.cpp @brief 3 ranks of GradAccumulator + DataParallel against the recorded PyTorch large batch over all ranks' micro-batches (tests/fixtures/accumulation/ranks3*.safetensors).
#include <catch2/catch.hpp>

#include "distributed/data_parallel.h"
#include "optim/grad_accumulator.h"
#include "tests/distributed/mpi/world.h"
#include "tests/optim/reference_fixture.h"

using namespace ember;
using namespace ember::test::reference;

namespace {

/// A multi-rank case, trained: this rank's micro-batches through GradAccumulator with DataParallel as
/// its CommHook (an empty micro-step where this rank has none), flush() for a short window.
struct RankRun {
  Case c;
  std::shared_ptr<nn::Sequential> model;
  std::unique_ptr<optim::Optimizer> opt;
  std::vector<double> grad_norm;  ///< per window, after the all-reduce: the global norm
  size_t windows = 0;
};

RankRun run_ranks(const std::string& name) {
  distributed::ProcessGroup& pg = ember::test::dist::world();
  RankRun r{load_case(name), nullptr, nullptr, {}, 0};
  const Case& c = r.c;
  REQUIRE(pg.size() == c.meta_int("ranks"));
  r.model = make_model(c);
  // Small buckets: several all-reduces per window, the count travelling with the first.
  distributed::DataParallel dp(ember::test::dist::world_ptr(), *r.model,
                               distributed::DataParallelOptions{.bucket_bytes = 64});
  r.opt = make_optimizer(c, r.model->parameters());
  const int64_t accum = c.meta_int("accum_steps");
  optim::GradAccumulator acc(*r.model, *r.opt, {.accum_steps = accum, .clip_norm = c.meta_double("clip_norm")});
  acc.set_comm_hook(&dp);
  const auto windows = schedule(c);
  for (const std::vector<MicroBatch>& window : windows) {
    const int64_t steps = window.back().step + 1;
    for (int64_t k = 0; k < steps; ++k) {
      const MicroBatch* mine = nullptr;
      for (const MicroBatch& m : window)
        if (m.step == k && m.rank == pg.rank()) mine = &m;
      const bool ended = mine ? acc.backward(micro_loss(*r.model, c, *mine), mine->end - mine->begin)
                              : acc.empty_micro_batch();
      CHECK(ended == (k + 1 == accum));
    }
    if (steps < accum) CHECK(acc.flush());
    r.grad_norm.push_back(acc.last_grad_norm());
  }
  CHECK(acc.optimizer_steps() == static_cast<int64_t>(windows.size()));
  r.windows = windows.size();
  return r;
}

std::string where() { return "rank " + std::to_string(ember::test::dist::world().rank()) + ": "; }

}  // namespace

TEST_CASE("PyTorch reference: 3 ranks x accum 2, uneven shards and a flushed window, equal the large batch",
          "[mpi][reference]") {
  RankRun r = run_ranks("ranks3");
  const Policy policy(r.c, r.windows);
  check_module_state(r.c, *r.model, policy, where());
  check_optimizer_state(r.c, *r.model, *r.opt, policy, where());
  check_window_scalars(r.c, r.grad_norm, {}, policy);  // the loss sums are per rank
}

TEST_CASE("PyTorch reference: 3 ranks, window-merged BatchNorm, equal the large batch over all ranks",
          "[mpi][reference][bn]") {
  // Each rank normalizes its micro-batch with that micro-batch's statistics (no SyncBatchNorm), so the
  // weights depend only on the all-reduced gradients; the running statistics, merged across ranks at
  // each window end, must equal the large batch's over all ranks' samples, on every rank.
  RankRun r = run_ranks("ranks3_bn_window");
  const Policy policy(r.c, r.windows);
  check_module_state(r.c, *r.model, policy, where());
  check_optimizer_state(r.c, *r.model, *r.opt, policy, where());
  check_window_scalars(r.c, r.grad_norm, {}, policy);
}
