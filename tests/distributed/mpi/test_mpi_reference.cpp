/// @file tests/distributed/mpi/test_mpi_reference.cpp @brief 3 ranks of GradAccumulator + DataParallel against the recorded PyTorch large batch over all ranks' micro-batches (tests/fixtures/accumulation/ranks3.safetensors).
#include <catch2/catch.hpp>

#include "distributed/data_parallel.h"
#include "optim/grad_accumulator.h"
#include "tests/distributed/mpi/world.h"
#include "tests/optim/reference_fixture.h"

using namespace ember;
using namespace ember::test::reference;

TEST_CASE("PyTorch reference: 3 ranks x accum 2, uneven shards and a flushed window, equal the large batch",
          "[mpi][reference]") {
  distributed::ProcessGroup& pg = ember::test::dist::world();
  const Case c = load_case("ranks3");
  REQUIRE(pg.size() == c.meta_int("ranks"));
  auto model = make_model(c);
  // Small buckets: several all-reduces per window, the count travelling with the first.
  distributed::DataParallel dp(ember::test::dist::world_ptr(), *model, distributed::DataParallelOptions{.bucket_bytes = 64});
  auto opt = make_optimizer(c, model->parameters());
  const int64_t accum = c.meta_int("accum_steps");
  optim::GradAccumulator acc(*model, *opt, {.accum_steps = accum, .clip_norm = c.meta_double("clip_norm")});
  acc.set_comm_hook(&dp);
  const auto windows = schedule(c);
  std::vector<double> norms;
  for (const std::vector<MicroBatch>& window : windows) {
    const int64_t steps = window.back().step + 1;
    for (int64_t k = 0; k < steps; ++k) {
      const MicroBatch* mine = nullptr;
      for (const MicroBatch& m : window)
        if (m.step == k && m.rank == pg.rank()) mine = &m;
      const bool ended = mine ? acc.backward(micro_loss(*model, c, *mine), mine->end - mine->begin)
                              : acc.empty_micro_batch();
      CHECK(ended == (k + 1 == accum));
    }
    if (steps < accum) CHECK(acc.flush());
    norms.push_back(acc.last_grad_norm());  // the global norm: after the all-reduce
  }
  CHECK(acc.optimizer_steps() == static_cast<int64_t>(windows.size()));
  const Policy policy(c, windows.size());
  const std::string where = "rank " + std::to_string(pg.rank()) + ": ";
  check_module_state(c, *model, policy, where);
  check_optimizer_state(c, *model, *opt, policy, where);
  check_window_scalars(c, norms, {}, policy);  // the loss sums are per rank
}
