/// @file tests/distributed/test_data_parallel.cpp @brief DataParallel on a world of one: bucket layout, grads as bucket views, all-reduce counting and overlap, exact sums, errors; the post-accumulate hook; effective batch.
#include <catch2/catch.hpp>

#include <limits>

#include "optim/grad_accumulator.h"
#include "optim/sgd.h"
#include "tests/distributed/mlp_fixture.h"

using namespace ember;
using namespace ember::distributed;
using namespace ember::test::dist;

namespace {
// fp32 sums of a handful of products reordered between accumulation and one batch: ~1e-6 relative.
constexpr double kRtol = 1e-5, kAtol = 1e-6;

void check_close(const Tensor& a, const Tensor& b) {
  std::string why;
  const bool ok = ember::test::allclose(a, b, kRtol, kAtol, &why);
  INFO(why);
  CHECK(ok);
}
}  // namespace

TEST_CASE("post-accumulate grad hooks fire once per backward and can be removed", "[distributed][autograd]") {
  Tensor w = ones(Shape{3}, TensorOptions{}.set_requires_grad(true));
  int calls = 0;
  const uint64_t id = add_post_accumulate_grad_hook(w, [&](const Tensor& leaf) {
    ++calls;
    CHECK(leaf.is_same(w));
    CHECK(leaf.grad().defined());  // runs after the accumulation
  });
  sum(w * w + w).backward();  // w reaches AccumulateGrad through two paths, summed before it
  CHECK(calls == 1);
  sum(w).backward();
  CHECK(calls == 2);
  notify_grad_accumulated(w);  // what a weight-gradient GEMM writing .grad itself calls
  CHECK(calls == 3);
  remove_post_accumulate_grad_hook(w, id);
  sum(w).backward();
  CHECK(calls == 3);
  Tensor nonleaf = w * 2.0;
  CHECK_THROWS_WITH(add_post_accumulate_grad_hook(nonleaf, [](const Tensor&) {}), Catch::Contains("is not a leaf"));
}

TEST_CASE("DataParallel: buckets in reverse registration order, capped, grads are views", "[distributed]") {
  Mlp m(1);
  // fp32 bytes: fc1.weight 96, fc1.bias 24, fc2.weight 72, fc2.bias 12. A 100-byte cap gives
  // [fc2.bias, fc2.weight] (84), [fc1.bias] (24 + 84 > 100), [fc1.weight].
  DataParallel dp(std::make_shared<SingleProcessGroup>(), m.named(), {}, DataParallelOptions{.bucket_bytes = 100});
  const auto b = dp.buckets();
  REQUIRE(b.size() == 3);
  CHECK(b[0].names == std::vector<std::string>{"fc2.bias", "fc2.weight"});
  CHECK(b[1].names == std::vector<std::string>{"fc1.bias"});
  CHECK(b[2].names == std::vector<std::string>{"fc1.weight"});
  CHECK(b[0].numel == 21);
  CHECK(b[2].numel == 24);
  // Views: fc2.weight's gradient lies right after fc2.bias's in one buffer.
  REQUIRE(m.b2.grad().defined());
  CHECK(static_cast<float*>(m.w2.grad().data_ptr()) == static_cast<float*>(m.b2.grad().data_ptr()) + 3);
  CHECK(m.w2.grad().storage() == m.b2.grad().storage());
  CHECK(m.w1.grad().to_vector<float>() == std::vector<float>(24, 0.f));

  DataParallel one(std::make_shared<SingleProcessGroup>(), m.named(), {});  // default 25 MiB: one bucket
  CHECK(one.buckets().size() == 1);
  CHECK(one.buckets()[0].names.size() == 4);

  NamedTensors tied = m.named();
  tied.emplace_back("decoder.weight", m.w1);  // the same tensor under a second name: reduced once
  CHECK(DataParallel(std::make_shared<SingleProcessGroup>(), tied, {}).buckets()[0].names.size() == 4);
}

TEST_CASE("DataParallel: no all-reduce on inner micro-batches, one per bucket per window, overlapped",
          "[distributed]") {
  Mlp m(2), ref(2);
  auto pg = std::make_shared<SingleProcessGroup>();
  DataParallel dp(pg, m.named(), {}, DataParallelOptions{.bucket_bytes = 100});
  const int64_t base = pg->stats().all_reduce;  // construction's layout check
  for (int step = 0; step < 3; ++step) {
    dp.before_backward(false);
    loss_mean(m, 0, 3).backward(full(Shape{}, 3.0));
    CHECK(pg->stats().all_reduce == base + 3 * step);  // inner micro-batch: nothing
    dp.before_backward(true);
    loss_mean(m, 3, 6).backward(full(Shape{}, 3.0));
    // Buckets 0 and 1 started from the hooks during that backward; the last (count) bucket waits.
    CHECK(dp.stats().launched_in_backward == 2 * (step + 1));
    std::vector<Tensor> g = m.grads();
    CHECK(dp.reduce(g, 6) == 6);
    CHECK(pg->stats().all_reduce == base + 3 * (step + 1));
    kernels::scale_many(std::span<Tensor>(g), 1.0 / 6.0);
    sgd_step(m, 0.1);
    run_window(ref, nullptr, {{0, 6}});
    sgd_step(ref, 0.1);
  }
  CHECK(dp.stats().allreduce_calls == 9);
  CHECK(dp.stats().windows == 3);
  for (size_t i = 0; i < 4; ++i) check_close(m.params()[i], ref.params()[i]);
}

TEST_CASE("DataParallel on one rank: accumulated windows equal the large batch exactly", "[distributed]") {
  for (bool overlap : {true, false}) {
    INFO("overlap " << overlap);
    Mlp m(3), ref(3);
    auto pg = std::make_shared<SingleProcessGroup>();
    DataParallel dp(pg, m.named(), {}, DataParallelOptions{.bucket_bytes = 64, .overlap = overlap});
    for (int step = 0; step < 4; ++step) {
      const int64_t o = step * 7;
      // Ragged micro-batches 3 + 3 + 1 against one batch of 7.
      CHECK(run_window(m, &dp, {{o, o + 3}, {o + 3, o + 6}, {o + 6, o + 7}}) == 7);
      CHECK(run_window(ref, nullptr, {{o, o + 7}}) == 7);
      if (step == 0)
        for (size_t i = 0; i < 4; ++i) check_close(m.grads()[i], ref.grads()[i]);
      sgd_step(m, 0.2);
      sgd_step(ref, 0.2);
    }
    for (size_t i = 0; i < 4; ++i) check_close(m.params()[i], ref.params()[i]);
    CHECK(dp.stats().launched_in_backward == (overlap ? 4 * (static_cast<int64_t>(dp.buckets().size()) - 1) : 0));
    CHECK(dp.stats().allreduce_calls == 4 * static_cast<int64_t>(dp.buckets().size()));
  }
}

TEST_CASE("DataParallel re-attaches a gradient that was replaced or reset", "[distributed]") {
  Mlp m(4), ref(4);
  DataParallel dp(std::make_shared<SingleProcessGroup>(), m.named(), {});
  m.w1.set_grad(Tensor());                     // reset to undefined (set_to_none)
  m.b1.set_grad(full(Shape{6}, 0.0));          // replaced by a fresh buffer
  run_window(m, &dp, {{0, 2}, {2, 5}});
  run_window(ref, nullptr, {{0, 5}});
  for (size_t i = 0; i < 4; ++i) check_close(m.grads()[i], ref.grads()[i]);
  // Back inside the bucket: contiguous with its neighbour in reverse order (fc1.bias then fc1.weight).
  CHECK(static_cast<float*>(m.w1.grad().data_ptr()) == static_cast<float*>(m.b1.grad().data_ptr()) + 6);
}

TEST_CASE("DataParallel removes its hooks when destroyed", "[distributed]") {
  Mlp m(5);
  {
    DataParallel dp(std::make_shared<SingleProcessGroup>(), m.named(), {});
    CHECK(m.w1.unsafe_impl()->meta().post_accumulate_hooks.size() == 1);
  }
  CHECK(m.w1.unsafe_impl()->meta().post_accumulate_hooks.empty());
  loss_mean(m, 0, 2).backward();  // no dangling hook runs
  CHECK(m.w1.grad().defined());
}

TEST_CASE("DataParallel rejects bad arguments", "[distributed]") {
  Mlp m(6);
  auto pg = std::make_shared<SingleProcessGroup>();
  CHECK_THROWS_WITH(DataParallel(nullptr, m.named(), {}), Catch::Contains("process group is null"));
  CHECK_THROWS_WITH(DataParallel(pg, m.named(), {}, DataParallelOptions{.bucket_bytes = 0}),
                    Catch::Contains("bucket_bytes must be >= 1, got 0"));
  CHECK_THROWS_WITH(DataParallel(pg, {}, {}), Catch::Contains("no parameters that require grad"));
  Tensor nonleaf = m.w1 * 2.0;
  CHECK_THROWS_WITH(DataParallel(pg, {{"twice", nonleaf}}, {}), Catch::Contains("twice") &&
                                                                    Catch::Contains("is not a leaf"));
  Tensor ints = zeros(Shape{2}, TensorOptions{}.set_dtype(DType::i64));
  CHECK_THROWS_WITH(DataParallel(pg, {{"steps", ints}}, {}), Catch::Contains("steps must be floating"));
  DataParallel dp(pg, m.named(), {});
  std::vector<Tensor> g = m.grads();
  CHECK_THROWS_WITH(dp.reduce(g, -1), Catch::Contains("local sample count -1"));
  CHECK_THROWS_WITH(dp.reduce(g, (int64_t{1} << 24) + 1), Catch::Contains("16777217"));
}

TEST_CASE("effective batch is micro x accum x world, validated", "[distributed]") {
  SingleProcessGroup pg;
  const EffectiveBatch eb = validate_effective_batch(32, 4, pg);
  CHECK(eb.total() == 128);
  CHECK(eb.str() == "effective batch 128 = micro-batch 32 x accumulation 4 x world 1");
  CHECK_THROWS_WITH(validate_effective_batch(0, 4, pg), Catch::Contains("micro-batch size must be >= 1, got 0"));
  CHECK_THROWS_WITH(validate_effective_batch(3, -2, pg), Catch::Contains("accumulation steps must be >= 1, got -2"));
  CHECK_THROWS_WITH(validate_effective_batch(int64_t{1} << 40, int64_t{1} << 30, pg), Catch::Contains("overflows"));
}

TEST_CASE("DataParallel: a node that writes .grad itself reports it with notify_grad_accumulated",
          "[distributed]") {
  Mlp m(8);
  auto pg = std::make_shared<SingleProcessGroup>();
  // Buckets (100-byte cap): [fc2.bias, fc2.weight], [fc1.bias], [fc1.weight] (the first carries the count).
  DataParallel dp(pg, m.named(), {}, DataParallelOptions{.bucket_bytes = 100});
  auto write_grad = [](const Tensor& p, double v) {  // what a weight-gradient GEMM with beta = 1 does
    NoGradGuard ng;
    Tensor g = p.grad();
    g.copy_(g + v);
    notify_grad_accumulated(p);
  };
  dp.before_backward(false, 2);
  write_grad(m.b2, 1.0);
  CHECK(dp.stats().allreduce_calls == 0);  // inner micro-batch
  dp.before_backward(true, 4);  // the window's local count, known before the last backward: bucket 0 takes it
  write_grad(m.b1, 1.0);        // bucket 1 complete, but bucket 0 must start first: nothing yet
  CHECK(dp.stats().allreduce_calls == 0);
  write_grad(m.b2, 1.0);
  CHECK(dp.stats().allreduce_calls == 0);  // fc2.weight still pending
  write_grad(m.w2, 1.0);
  CHECK(dp.stats().allreduce_calls == 2);  // bucket 0, then the waiting bucket 1, in order
  CHECK(dp.stats().launched_in_backward == 2);
  CHECK_THROWS_WITH(write_grad(m.w2, 1.0), Catch::Contains("fc2.weight received a second gradient"));
  write_grad(m.w1, 1.0);
  CHECK(dp.stats().allreduce_calls == 3);  // every bucket started during the backward
  std::vector<Tensor> g = m.grads();
  CHECK(dp.reduce(g, 4) == 4);
  CHECK(dp.stats().allreduce_calls == 3);
  CHECK(dp.stats().launched_in_backward == 3);
  CHECK(m.b2.grad().to_vector<float>() == std::vector<float>(3, 2.f));  // inner + last micro-batch
}

TEST_CASE("a skipped window leaves window-merged BN statistics untouched, with and without DataParallel",
          "[distributed][bn]") {
  for (const bool with_dp : {false, true}) {
    INFO((with_dp ? "DataParallel on one rank" : "no hook"));
    BnMlp model(800, /*window_stats=*/true);
    std::unique_ptr<DataParallel> dp;
    if (with_dp) dp = std::make_unique<DataParallel>(std::make_shared<SingleProcessGroup>(), model);
    optim::SGD opt(model.parameters(), {.lr = 0.1});
    optim::GradAccumulator acc(model, opt, {.accum_steps = 2});
    if (dp) acc.set_comm_hook(dp.get());
    const auto loss = [&](int64_t b, bool poison) {
      Tensor x = sample_inputs(b, b + 3);
      if (poison) x = x * std::numeric_limits<double>::quiet_NaN();
      Tensor d = model(x) - sample_targets(b, b + 3);
      return sum(d * d) * (1.0 / 3.0);
    };
    acc.backward(loss(0, false), 3);
    acc.backward(loss(3, false), 3);
    REQUIRE(acc.optimizer_steps() == 1);
    const auto mean = model.bn1->running_mean.to_vector<float>(), var = model.bn1->running_var.to_vector<float>();
    acc.backward(loss(6, false), 3);
    acc.backward(loss(9, true), 3);  // NaN gradients: the window is skipped
    CHECK(acc.last_step_skipped());
    CHECK(model.bn1->running_mean.to_vector<float>() == mean);
    CHECK(model.bn1->running_var.to_vector<float>() == var);
    CHECK(model.bn1->num_batches_tracked.item() == 1.0);
    CHECK(model.bn2->num_batches_tracked.item() == 1.0);
    CHECK(model.bn1->window().count == 0);
    if (dp) CHECK(dp->stats().window_stat_merges == 1);  // the applied window only
  }
}

TEST_CASE("DataParallel on one rank: flush agrees with itself, buffers are not rebroadcast", "[distributed]") {
  BnMlp model(900, /*window_stats=*/false);
  DataParallel dp(std::make_shared<SingleProcessGroup>(), model);
  CHECK(dp.agree_pending(0) == 0);
  CHECK(dp.agree_pending(3) == 3);
  optim::SGD opt(model.parameters(), {.lr = 0.1});
  optim::GradAccumulator acc(model, opt, {.accum_steps = 4});
  acc.set_comm_hook(&dp);
  Tensor d = model(sample_inputs(0, 4)) - sample_targets(0, 4);
  acc.backward(sum(d * d) * 0.25, 4);
  CHECK(acc.flush());
  CHECK_FALSE(acc.flush());
  CHECK(dp.stats().windows == 1);
  CHECK(dp.stats().buffer_broadcasts == 0);  // a world of one has nothing to rebroadcast
}
