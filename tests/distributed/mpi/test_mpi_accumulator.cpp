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

TEST_CASE("set_to_none over 3 ranks: a parameter touched on one rank steps everywhere, untouched on all it stays",
          "[mpi]") {
  // Parameters w and u (f64). Window 0: only rank 1's micro-batch uses u; window 1: no rank uses u.
  // Reference: one process accumulating the same 3 micro-batches per window (rank order), same SGD.
  auto make = [](nn::Module& m) {
    const TensorOptions f64 = TensorOptions{}.set_dtype(DType::f64);
    m.register_parameter("w", from_vector({1.0, -2.0, 0.5}, {3}, f64));
    m.register_parameter("u", from_vector({0.25, 4.0, -1.0}, {3}, f64));
  };
  auto loss = [](nn::Module& m, int64_t window, int64_t rank) {
    const auto p = m.parameters();
    const double s = static_cast<double>(window * 3 + rank + 1);
    const Tensor x = from_vector({s, -0.5 * s, 2.0}, {3}, TensorOptions{}.set_dtype(DType::f64));
    Tensor l = (p[0] * x).sum();
    return window == 0 && rank == 1 ? l + (p[1] * x).sum() : l;
  };
  nn::Module model, ref;
  make(model);
  make(ref);
  DataParallel dp(world_ptr(), model);
  const optim::SGDOptions so{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.5};
  optim::SGD opt(model.parameters(), so), ref_opt(ref.parameters(), so);
  optim::GradAccumulator acc(model, opt, {.accum_steps = 1}), ref_acc(ref, ref_opt, {.accum_steps = 3});
  acc.set_comm_hook(&dp);
  std::vector<double> u_before = model.parameters()[1].to_vector<double>();
  for (int64_t window = 0; window < 2; ++window) {
    CHECK(acc.backward(loss(model, window, world().rank()), 1));
    for (int64_t r = 0; r < 3; ++r) ref_acc.backward(loss(ref, window, r), 1);
    const auto got = model.parameters(), want = ref.parameters();
    for (size_t i = 0; i < got.size(); ++i) {
      std::string why;
      INFO("window " << window << ", parameter " << i << ", rank " << world().rank());
      CHECK(ember::test::allclose(got[i], want[i], 1e-13, 1e-13, &why));  // f64 sums in another order
      INFO(why);
    }
    // Window 0: rank 1's gradient moved u on every rank. Window 1: u stays where it was on every rank
    // (no weight decay, no momentum step), although its momentum buffer is non-zero.
    CHECK((got[1].to_vector<double>() != u_before) == (window == 0));
    u_before = got[1].to_vector<double>();
  }
  const NamedTensors state = opt.state_dict(model.named_parameters());
  CHECK(std::any_of(state.begin(), state.end(), [](const auto& kv) { return kv.first == "u.momentum_buffer"; }));
}
