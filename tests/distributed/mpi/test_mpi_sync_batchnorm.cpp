/// @file tests/distributed/mpi/test_mpi_sync_batchnorm.cpp @brief sync_batch_norm over 3 ranks equals batch norm on the whole batch (forward, dx, summed dweight/dbias, running stats), for even and uneven micro-batches.
#include <catch2/catch.hpp>

#include "distributed/sync_batchnorm.h"
#include "tests/distributed/bn_reference.h"
#include "tests/distributed/mpi/world.h"
#include "tests/harness/backends.h"

using namespace ember;
using namespace ember::distributed;
using ember::test::dist::world;
using ember::test::random_input;

namespace {
void check_close(const Tensor& a, const Tensor& b, double rtol, double atol, const char* what) {
  std::string why;
  const bool ok = ember::test::allclose(a, b, rtol, atol, &why);
  INFO(what << " on rank " << world().rank() << ": " << why);
  CHECK(ok);
}

// Rank r normalizes samples [begin[r], begin[r + 1]) of one batch of 6; every rank also runs batch
// norm on the whole batch locally as the reference.
void expect_matches_full_batch(const int64_t (&begin)[4]) {
  ProcessGroup& pg = world();
  const int r = pg.rank();
  const TensorOptions rg = TensorOptions{}.set_requires_grad(true);
  const Shape shape{6, 3, 2, 2};
  Tensor x_full = random_input(shape, 41, -2.0, 3.0), up_full = random_input(shape, 42);
  Tensor w = random_input(Shape{3}, 43, 0.5, 1.5, rg), b = random_input(Shape{3}, 44, -0.5, 0.5, rg);
  Tensor wr = w.detach().clone().set_requires_grad(true), br = b.detach().clone().set_requires_grad(true);

  Tensor x = x_full.slice(0, begin[r], begin[r + 1]).contiguous().clone().set_requires_grad(true);
  Tensor rm = zeros(Shape{3}), rv = ones(Shape{3});
  Tensor y = sync_batch_norm(x, w, b, rm, rv, Tensor(), true, pg);
  sum(y * up_full.slice(0, begin[r], begin[r + 1])).backward();

  Tensor xr = x_full.detach().clone().set_requires_grad(true);
  Tensor mean_ref, var_ref;
  Tensor yr = ember::test::dist::reference_batch_norm(xr, wr, br, 1e-5, &mean_ref, &var_ref);
  sum(yr * up_full).backward();

  // fp32, sums over 24 values per channel: 1e-5 relative / 1e-5 absolute; dx cancels three O(1)
  // terms, hence 1e-4 relative there.
  check_close(y, yr.detach().slice(0, begin[r], begin[r + 1]), 1e-5, 1e-5, "output");
  check_close(x.grad(), xr.grad().slice(0, begin[r], begin[r + 1]), 1e-4, 1e-5, "dx");
  Tensor dw = w.grad().clone(), db = b.grad().clone();
  pg.all_reduce(dw);  // what DataParallel does with the parameters' gradients
  pg.all_reduce(db);
  check_close(dw, wr.grad(), 1e-5, 1e-5, "dweight summed over ranks");
  check_close(db, br.grad(), 1e-5, 1e-5, "dbias summed over ranks");
  check_close(rm, mean_ref * 0.1, 1e-5, 1e-6, "running_mean");
  check_close(rv, var_ref * 0.1 + 0.9, 1e-5, 1e-6, "running_var");
}
}  // namespace

TEST_CASE("SyncBatchNorm over 3 ranks x micro 2 equals BatchNorm on one batch of 6", "[mpi][bn]") {
  expect_matches_full_batch({0, 2, 4, 6});
}

TEST_CASE("SyncBatchNorm weights uneven micro-batches (1, 2, 3 samples) by their counts", "[mpi][bn]") {
  expect_matches_full_batch({0, 1, 3, 6});
}
