/// @file tests/distributed/mpi/test_mpi_data_parallel.cpp @brief DataParallel over 3 ranks vs one process: the seed's examples (3x2x3 = 18, 2x1x3 = 6), all-reduce counts, ragged data, mismatched models and batch settings.
#include <catch2/catch.hpp>

#include "tests/distributed/mlp_fixture.h"
#include "tests/distributed/mpi/world.h"

using namespace ember;
using namespace ember::distributed;
using namespace ember::test::dist;

namespace {
// fp32: a few-term sums reordered across ranks and micro-batches; after 5 SGD steps the weights
// still agree to ~1e-6 relative. 1e-5 relative + 1e-6 absolute.
void check_close(const Tensor& a, const Tensor& b, const char* what) {
  std::string why;
  const bool ok = ember::test::allclose(a, b, 1e-5, 1e-6, &why);
  INFO(what << " on rank " << world().rank() << ": " << why);
  CHECK(ok);
}

// Micro-batch k of this rank in an optimizer step whose window starts at sample `o`: the seed's
// layout, e.g. micro 3 x 3 ranks: rank 0 gets S1-S3, rank 1 S4-S6, rank 2 S7-S9, then S10-S18.
Range shard(int64_t o, int64_t k, int64_t micro, int rank, int world_size) {
  const int64_t b = o + k * micro * world_size + rank * micro;
  return {b, b + micro};
}

// Trains `steps` windows of micro x accum x 3 ranks and the reference with one batch of the same
// samples, checking the first window's mean gradients and the final weights.
void expect_large_batch_equivalence(int64_t micro, int64_t accum, int steps) {
  ProcessGroup& pg = world();
  Mlp m(100 + static_cast<uint64_t>(pg.rank()));  // different on each rank: the broadcast must fix it
  Mlp ref(100);                                      // rank 0's initialization
  DataParallel dp(world_ptr(), m.named(), {}, DataParallelOptions{.bucket_bytes = 64});
  for (size_t i = 0; i < 4; ++i) check_close(m.params()[i], ref.params()[i], "broadcast parameter");
  const EffectiveBatch eb = validate_effective_batch(micro, accum, pg);
  REQUIRE(eb.total() == micro * accum * 3);
  for (int s = 0; s < steps; ++s) {
    const int64_t o = s * eb.total();
    std::vector<Range> mine;
    for (int64_t k = 0; k < accum; ++k) mine.push_back(shard(o, k, micro, pg.rank(), 3));
    CHECK(run_window(m, &dp, mine) == eb.total());
    CHECK(run_window(ref, nullptr, {{o, o + eb.total()}}) == eb.total());
    if (s == 0)
      for (size_t i = 0; i < 4; ++i) check_close(m.grads()[i], ref.grads()[i], "mean gradient");
    sgd_step(m, 0.3);
    sgd_step(ref, 0.3);
  }
  for (size_t i = 0; i < 4; ++i) check_close(m.params()[i], ref.params()[i], "weight after the steps");
  const auto buckets = static_cast<int64_t>(dp.buckets().size());
  CHECK(dp.stats().allreduce_calls == buckets * steps);
  CHECK(dp.stats().launched_in_backward == (buckets - 1) * steps);
}
}  // namespace

TEST_CASE("seed example 1: micro 3 x accum 2 x 3 ranks equals batch 18 over 5 steps", "[mpi]") {
  expect_large_batch_equivalence(3, 2, 5);
}

TEST_CASE("seed example 2: micro 2 x accum 1 x 3 ranks equals batch 6", "[mpi]") {
  expect_large_batch_equivalence(2, 1, 5);
}

TEST_CASE("all-reduce calls: one per bucket per optimizer step, none on inner micro-batches", "[mpi]") {
  ProcessGroup& pg = world();
  Mlp m(7);
  DataParallel dp(world_ptr(), m.named(), {}, DataParallelOptions{.bucket_bytes = 100});
  REQUIRE(dp.buckets().size() == 3);
  const int64_t start = pg.stats().all_reduce;
  for (int s = 0; s < 3; ++s) {
    for (int k = 0; k < 4; ++k) {
      const bool last = k == 3;
      dp.before_backward(last);
      const auto [b, e] = shard(s * 36, k, 3, pg.rank(), 3);
      loss_mean(m, b, e).backward(full(Shape{}, 3.0));
      // Inner micro-batches: nothing at all. The last: the two early buckets started during backward.
      CHECK(pg.stats().all_reduce == start + 3 * s + (last ? 2 : 0));
    }
    std::vector<Tensor> g = m.grads();
    CHECK(dp.reduce(g, 12) == 36);
    CHECK(pg.stats().all_reduce == start + 3 * (s + 1));
    sgd_step(m, 0.1);
  }
  CHECK(dp.stats().allreduce_calls == 9);
  CHECK(dp.stats().windows == 3);
}

TEST_CASE("ragged data across ranks stays exact", "[mpi]") {
  ProcessGroup& pg = world();
  SECTION("one micro-batch of 3, 3, 1 samples equals batch 7") {
    Mlp m(21), ref(21);
    DataParallel dp(world_ptr(), m.named(), {});
    const Range mine[3] = {{0, 3}, {3, 6}, {6, 7}};
    CHECK(run_window(m, &dp, {mine[pg.rank()]}) == 7);
    run_window(ref, nullptr, {{0, 7}});
    for (size_t i = 0; i < 4; ++i) check_close(m.grads()[i], ref.grads()[i], "mean gradient");
  }
  SECTION("different micro-batch sizes and counts per rank (2+1, 3+3+2, 1) equal batch 12") {
    Mlp m(22), ref(22);
    DataParallel dp(world_ptr(), m.named(), {}, DataParallelOptions{.bucket_bytes = 64});
    const std::vector<Range> mine[3] = {{{0, 2}, {2, 3}}, {{3, 6}, {6, 9}, {9, 11}}, {{11, 12}}};
    CHECK(run_window(m, &dp, mine[pg.rank()]) == 12);
    run_window(ref, nullptr, {{0, 12}});
    for (size_t i = 0; i < 4; ++i) check_close(m.grads()[i], ref.grads()[i], "mean gradient");
  }
}

TEST_CASE("a model that differs across ranks is an error on every rank", "[mpi]") {
  ProcessGroup& pg = world();
  Mlp m(30, pg.rank() == 2 ? 7 : 6);  // rank 2 has a wider hidden layer
  CHECK_THROWS_WITH(DataParallel(world_ptr(), m.named(), {}),
                    Catch::Contains("parameters or buffers differ across ranks") &&
                        Catch::Contains("rank 0 has 4 parameters with 51 elements and 0 buffers") &&
                        Catch::Contains("rank 2 has 4 parameters with 59 elements"));
  // A buffer only some ranks have (e.g. BatchNorm on one rank only) is caught too.
  Mlp same(31);
  NamedTensors bufs;
  if (pg.rank() == 1) bufs.emplace_back("bn.running_mean", zeros(Shape{6}));
  CHECK_THROWS_WITH(DataParallel(world_ptr(), same.named(), bufs),
                    Catch::Contains("rank 1 has 4 parameters with 51 elements and 1 buffers with 6 elements"));
  pg.barrier();  // every rank threw at the same point and the group is still usable
}

TEST_CASE("ranks with different micro-batch or accumulation settings are an error", "[mpi]") {
  ProcessGroup& pg = world();
  CHECK_THROWS_WITH(validate_effective_batch(3, pg.rank() == 1 ? 3 : 2, pg),
                    Catch::Contains("the ranks disagree") && Catch::Contains("accumulation 3"));
  CHECK(validate_effective_batch(3, 2, pg).str() == "effective batch 18 = micro-batch 3 x accumulation 2 x world 3");
}
