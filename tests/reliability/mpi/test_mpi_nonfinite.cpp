/// @file tests/reliability/mpi/test_mpi_nonfinite.cpp @brief Under DataParallel (3 ranks) a NaN/Inf injected into one rank's micro-batch makes every rank skip the same window; weights stay identical across ranks and training continues.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>

#include "distributed/data_parallel.h"
#include "optim/adamw.h"
#include "optim/grad_accumulator.h"
#include "tests/distributed/mlp_fixture.h"
#include "tests/distributed/mpi/world.h"

using namespace ember;
using namespace ember::distributed;
using namespace ember::test::dist;

namespace {

Tensor mean_loss(nn::Module& model, int64_t begin, int64_t end) {
  Tensor d = model(sample_inputs(begin, end)) - sample_targets(begin, end);
  return sum(d * d) * (1.0 / static_cast<double>(end - begin));
}

/// All parameters flattened into one CPU f32 vector.
std::vector<float> flat_weights(nn::Module& m) {
  std::vector<float> out;
  for (const Tensor& p : m.parameters()) {
    const auto v = p.to_vector<float>();
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

/// True on every rank when every rank holds exactly rank 0's bytes.
bool same_on_all_ranks(const std::vector<float>& v) {
  ProcessGroup& pg = world();
  Tensor t = from_vector(v, {static_cast<int64_t>(v.size())});
  Tensor root = t.clone();
  pg.broadcast(root, 0);
  const auto r = root.to_vector<float>();
  Tensor differs = from_vector(std::vector<double>{std::memcmp(r.data(), v.data(), v.size() * sizeof(float)) != 0 ? 1.0 : 0.0},
                               {1}, TensorOptions{}.set_dtype(DType::f64));
  pg.all_reduce(differs);
  return differs.item() == 0.0;
}

/// Number of ranks for which `flag` is true.
int64_t count_ranks(bool flag) {
  Tensor t = from_vector(std::vector<double>{flag ? 1.0 : 0.0}, {1}, TensorOptions{}.set_dtype(DType::f64));
  world().all_reduce(t);
  return static_cast<int64_t>(t.item());
}

}  // namespace

TEST_CASE("DataParallel: a NaN/Inf in one rank's micro-batch skips that window on every rank", "[mpi][nonfinite]") {
  ProcessGroup& pg = world();
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  // (rank, micro-step, value): the first micro-batch of window 1 on rank 1; the last micro-batch of
  // window 1 on rank 2 (its bucket all-reduce overlaps that backward); -Inf on rank 0.
  struct Case {
    int rank;
    int64_t step;
    double value;
  };
  for (const Case c : {Case{1, 3, nan}, Case{2, 4, inf}, Case{0, 4, -inf}}) {
    INFO("injected on rank " << c.rank << " at micro-step " << c.step << ", value " << c.value);
    MlpModule model(400);
    DataParallel dp(world_ptr(), model, DataParallelOptions{.bucket_bytes = 64});  // several buckets
    optim::AdamW opt(model.parameters(), {.lr = 0.05});
    std::vector<optim::NonFiniteInjection> inject;
    if (pg.rank() == c.rank) inject.push_back({c.step, c.value});
    optim::GradAccumulator acc(model, opt, {.accum_steps = 2, .inject_non_finite = inject});
    acc.set_comm_hook(&dp);
    auto window = [&](int64_t w) {
      for (int64_t k = 0; k < 2; ++k) {
        const int64_t b = w * 18 + k * 9 + pg.rank() * 3;
        acc.backward(mean_loss(model, b, b + 3), 3);
      }
    };
    window(0);
    REQUIRE(count_ranks(!acc.last_step_skipped()) == pg.size());
    const auto before = flat_weights(model);
    window(1);  // the window with the injected value on one rank
    CHECK(count_ranks(acc.last_step_skipped()) == pg.size());  // the same decision everywhere
    CHECK(count_ranks(std::isnan(acc.last_grad_norm())) == pg.size());
    CHECK(flat_weights(model) == before);
    CHECK(same_on_all_ranks(flat_weights(model)));
    window(2);  // training continues, in step on every rank
    CHECK(count_ranks(!acc.last_step_skipped()) == pg.size());
    CHECK(flat_weights(model) != before);
    CHECK(same_on_all_ranks(flat_weights(model)));
    CHECK(acc.skipped_steps() == 1);
    CHECK(acc.optimizer_steps() == 2);
    CHECK(dp.stats().windows == 3);
  }
}
