/// @file tests/distributed/mpi/test_mpi_accumulator.cpp @brief The full data path over 3 ranks: nn::Module + optim::GradAccumulator + SGD with DataParallel as its CommHook equals one process with the large batch; the SyncBatchNorm module and buffer broadcast.
#include <catch2/catch.hpp>

#include "distributed/sync_batchnorm.h"
#include "optim/grad_accumulator.h"
#include "optim/sgd.h"
#include "tests/distributed/mlp_fixture.h"
#include "tests/distributed/mpi/world.h"

using namespace ember;
using namespace ember::distributed;
using namespace ember::test::dist;

namespace {
Tensor mean_loss(nn::Module& model, Range r) {
  Tensor d = model(sample_inputs(r.first, r.second)) - sample_targets(r.first, r.second);
  return sum(d * d) * (1.0 / static_cast<double>(r.second - r.first));
}

void check_close(const Tensor& a, const Tensor& b, const char* what) {
  std::string why;
  const bool ok = ember::test::allclose(a, b, 1e-5, 1e-6, &why);  // fp32 reordered sums, as elsewhere
  INFO(what << " on rank " << world().rank() << ": " << why);
  CHECK(ok);
}
}  // namespace

TEST_CASE("GradAccumulator + DataParallel: micro 3 x accum 2 x 3 ranks equals batch 18 over 5 steps", "[mpi]") {
  ProcessGroup& pg = world();
  MlpModule model(200 + static_cast<uint64_t>(pg.rank())), ref(200);
  DataParallel dp(world_ptr(), model, DataParallelOptions{.bucket_bytes = 64});
  optim::SGD opt(model.parameters(), {.lr = 0.3, .momentum = 0.9});
  optim::SGD ref_opt(ref.parameters(), {.lr = 0.3, .momentum = 0.9});
  optim::GradAccumulator acc(model, opt, {.accum_steps = 2});
  optim::GradAccumulator ref_acc(ref, ref_opt, {.accum_steps = 1});
  acc.set_comm_hook(&dp);
  for (int s = 0; s < 5; ++s) {
    for (int64_t k = 0; k < 2; ++k) {
      const int64_t b = s * 18 + k * 9 + pg.rank() * 3;
      CHECK(acc.backward(mean_loss(model, {b, b + 3}), 3) == (k == 1));
    }
    CHECK(ref_acc.backward(mean_loss(ref, {s * 18, s * 18 + 18}), 18));
  }
  CHECK(acc.optimizer_steps() == 5);
  const auto got = model.parameters(), want = ref.parameters();
  for (size_t i = 0; i < got.size(); ++i) check_close(got[i], want[i], "weight after 5 steps");
  CHECK(dp.stats().allreduce_calls == 5 * static_cast<int64_t>(dp.buckets().size()));
  CHECK(dp.stats().windows == 5);
}

TEST_CASE("GradAccumulator + DataParallel: 7 samples, micro 2 x accum 2 x 3 ranks (ranks 1, 2 empty at the end)",
          "[mpi]") {
  // Global micro-step 0: [0,2) [2,4) [4,6); step 1: [6,7) on rank 0, nothing on ranks 1 and 2.
  ProcessGroup& pg = world();
  MlpModule model(300), ref(300);
  DataParallel dp(world_ptr(), model, DataParallelOptions{.bucket_bytes = 64});
  optim::SGD opt(model.parameters(), {.lr = 0.3}), ref_opt(ref.parameters(), {.lr = 0.3});
  optim::GradAccumulator acc(model, opt, {.accum_steps = 2}), ref_acc(ref, ref_opt, {.accum_steps = 1});
  acc.set_comm_hook(&dp);
  CHECK_FALSE(acc.backward(mean_loss(model, {2 * pg.rank(), 2 * pg.rank() + 2}), 2));
  const bool stepped = pg.rank() == 0 ? acc.backward(mean_loss(model, {6, 7}), 1) : acc.empty_micro_batch();
  CHECK(stepped);
  CHECK(ref_acc.backward(mean_loss(ref, {0, 7}), 7));
  const auto got = model.parameters(), want = ref.parameters();
  for (size_t i = 0; i < got.size(); ++i) check_close(got[i], want[i], "weight after the ragged window");
  CHECK(dp.stats().allreduce_calls == static_cast<int64_t>(dp.buckets().size()));
}

TEST_CASE("SyncBatchNorm module: BatchNorm's names, buffers broadcast from rank 0, train and eval", "[mpi][bn]") {
  ProcessGroup& pg = world();
  auto bn = std::make_shared<SyncBatchNorm>(3, world_ptr());
  std::vector<std::string> names;
  for (const auto& [n, t] : bn->named_buffers()) names.push_back(n);
  CHECK(names == std::vector<std::string>{"running_mean", "running_var", "num_batches_tracked"});
  {
    NoGradGuard ng;
    Tensor rm = bn->named_buffers()[0].second;
    rm.fill_(pg.rank());  // diverged state: DataParallel must make rank 0's everybody's
  }
  DataParallel dp(world_ptr(), *bn);
  CHECK(bn->named_buffers()[0].second.to_vector<float>() == std::vector<float>(3, 0.f));
  // Train: 2 samples per rank, normalized with the statistics of all 6.
  Tensor x_full = ember::test::random_input(Shape{6, 3}, 77);
  Tensor y = (*bn)(x_full.slice(0, 2 * pg.rank(), 2 * pg.rank() + 2).contiguous());
  Tensor yr = sync_batch_norm(x_full, ones(Shape{3}), zeros(Shape{3}), {}, {}, {}, true, *std::make_shared<SingleProcessGroup>());
  check_close(y, yr.slice(0, 2 * pg.rank(), 2 * pg.rank() + 2), "train output");
  CHECK(bn->named_buffers()[2].second.item() == 1.0);
  bn->eval();
  const int64_t before = pg.stats().all_reduce;
  Tensor ye = (*bn)(x_full);
  CHECK(pg.stats().all_reduce == before);  // evaluation communicates nothing
  CHECK(ye.shape() == Shape{6, 3});
  CHECK(bn->str() == "SyncBatchNorm(3, world=3)");
}
