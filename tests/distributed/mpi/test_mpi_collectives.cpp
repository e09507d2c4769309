/// @file tests/distributed/mpi/test_mpi_collectives.cpp @brief MPI process group over 3 ranks: all_reduce sum/avg (f32, f64, i64), async overlap of two requests, broadcast from a non-zero root, barrier, counters.
#include <catch2/catch.hpp>

#include "ops/ops.h"
#include "tests/distributed/mpi/world.h"

using namespace ember;
using namespace ember::distributed;
using ember::test::dist::world;

TEST_CASE("MPI group: rank, size, backend", "[mpi]") {
  CHECK(world().size() == 3);
  CHECK(world().rank() >= 0);
  CHECK(world().rank() < 3);
  CHECK(world().backend() == "mpi");
  CHECK(launcher_world_size() == 3);
}

TEST_CASE("MPI group: all_reduce sum and avg", "[mpi]") {
  ProcessGroup& pg = world();
  const double r = pg.rank() + 1;  // 1, 2, 3
  Tensor f = from_vector(std::vector<double>{r, 2 * r, -r}, Shape{3});
  pg.all_reduce(f, ReduceOp::Sum);
  CHECK(f.to_vector<float>() == std::vector<float>{6.f, 12.f, -6.f});  // small integers: exact in f32
  Tensor d = from_vector(std::vector<double>{r, 0.5 * r}, Shape{2}, TensorOptions{}.set_dtype(DType::f64));
  pg.all_reduce(d, ReduceOp::Avg);
  CHECK(d.to_vector<double>() == std::vector<double>{2.0, 1.0});
  Tensor i = from_vector(std::vector<int64_t>{int64_t{1} << 40, pg.rank()}, Shape{2}, TensorOptions{}.set_dtype(DType::i64));
  pg.all_reduce(i);
  CHECK(i.to_vector<int64_t>() == std::vector<int64_t>{int64_t{3} << 40, 3});
}

TEST_CASE("MPI group: two requests in flight complete independently", "[mpi]") {
  ProcessGroup& pg = world();
  Tensor a = full(Shape{1000}, pg.rank() + 1.0), b = full(Shape{7}, 10.0 * (pg.rank() + 1));
  const int64_t before = pg.stats().all_reduce;
  auto wa = pg.all_reduce_async(a);
  auto wb = pg.all_reduce_async(b);
  wb->wait();
  wa->wait();
  CHECK(wa->test());
  CHECK(a.to_vector<float>() == std::vector<float>(1000, 6.f));
  CHECK(b.to_vector<float>() == std::vector<float>(7, 60.f));
  CHECK(pg.stats().all_reduce == before + 2);
}

TEST_CASE("MPI group: broadcast from rank 1, barrier", "[mpi]") {
  ProcessGroup& pg = world();
  Tensor t = pg.rank() == 1 ? from_vector(std::vector<float>{3.5f, -1.f}, Shape{2}) : zeros(Shape{2});
  pg.broadcast(t, 1);
  CHECK(t.to_vector<float>() == std::vector<float>{3.5f, -1.f});
  CHECK_THROWS_WITH(pg.broadcast(t, 3), Catch::Contains("root 3 is not a rank of a group of size 3"));
  pg.barrier();
}
