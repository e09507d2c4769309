/// @file tests/distributed/test_process_group.cpp @brief Single-process group: identity collectives, counters, argument errors, the backend registry and init_process_group's launcher checks.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <optional>
#include <string>

#include "distributed/process_group.h"
#include "tests/harness/backends.h"

using namespace ember;
using namespace ember::distributed;

namespace {
// Sets an environment variable for the scope of a test and restores it afterwards.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) setenv(name, value, 1);
    else unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_) setenv(name_, old_->c_str(), 1);
    else unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};
}  // namespace

TEST_CASE("SingleProcessGroup: identity collectives, counted", "[distributed]") {
  SingleProcessGroup pg;
  CHECK(pg.rank() == 0);
  CHECK(pg.size() == 1);
  CHECK(pg.backend() == "single");
  Tensor t = from_vector(std::vector<float>{1.5f, -2.f, 3.f}, Shape{3});
  pg.all_reduce(t, ReduceOp::Sum);
  pg.all_reduce(t, ReduceOp::Avg);
  auto w = pg.all_reduce_async(t);
  CHECK(w->test());
  w->wait();
  pg.broadcast(t, 0);
  pg.barrier();
  CHECK(t.to_vector<float>() == std::vector<float>{1.5f, -2.f, 3.f});
  CHECK(pg.stats().all_reduce == 3);
  CHECK(pg.stats().broadcast == 1);
  CHECK(pg.stats().barrier == 1);
  CHECK(pg.stats().bytes == 4 * 12);
}

TEST_CASE("ProcessGroup rejects bad tensors and roots", "[distributed]") {
  SingleProcessGroup pg;
  Tensor nc = zeros(Shape{2, 3}).t();
  CHECK_THROWS_WITH(pg.all_reduce(nc), Catch::Contains("must be contiguous") && Catch::Contains("f32[3, 2]"));
  Tensor undefined;
  CHECK_THROWS_WITH(pg.all_reduce(undefined), Catch::Contains("undefined"));
  Tensor ints = zeros(Shape{2}, TensorOptions{}.set_dtype(DType::i64));
  CHECK_THROWS_WITH(pg.all_reduce(ints, ReduceOp::Avg), Catch::Contains("avg needs a floating tensor"));
  Tensor t = zeros(Shape{2});
  CHECK_THROWS_WITH(pg.broadcast(t, 1), Catch::Contains("root 1 is not a rank of a group of size 1"));
  CHECK(pg.stats().all_reduce == 0);  // rejected calls are not counted
}

TEST_CASE("init_process_group: single by default, clear errors otherwise", "[distributed]") {
  ScopedEnv a("OMPI_COMM_WORLD_SIZE", nullptr), b("PMI_SIZE", nullptr), c("PMIX_SIZE", nullptr),
      d("PMIX_RANK", nullptr);
  CHECK(launcher_world_size() == 1);
  CHECK_FALSE(launched_by_mpi());
  auto pg = init_process_group();
  CHECK(pg->backend() == "single");
  CHECK(init_process_group("single")->size() == 1);
  CHECK_THROWS_WITH(init_process_group("gloo"), Catch::Contains("unknown or unavailable backend \"gloo\"") &&
                                                      Catch::Contains("available: ") && Catch::Contains("single"));
  CHECK_THROWS_WITH(init_process_group("auto", Device::cpu(), ProcessGroupOptions{std::chrono::milliseconds(0)}),
                    Catch::Contains("timeout must be positive"));
  {
    ScopedEnv e("OMPI_COMM_WORLD_SIZE", "3");
    CHECK(launcher_world_size() == 3);
    CHECK(launched_by_mpi());
    // ember_tests links no MPI backend: several launched processes must not silently train alone.
    bool has_mpi = false;
    for (const auto& n : available_backends()) has_mpi = has_mpi || n == "mpi";
    REQUIRE_FALSE(has_mpi);
    CHECK_THROWS_WITH(init_process_group(), Catch::Contains("started 3 processes but this program has no MPI"));
    CHECK_THROWS_WITH(init_process_group("single"), Catch::Contains("the launcher started 3 processes"));
  }
  {
    ScopedEnv e("OMPI_COMM_WORLD_SIZE", "three");
    CHECK_THROWS_WITH(launcher_world_size(), Catch::Contains("OMPI_COMM_WORLD_SIZE=\"three\""));
  }
}

TEST_CASE("register_process_group_backend makes a backend available by name", "[distributed]") {
  register_process_group_backend("test-loopback", [](const ProcessGroupOptions& o) -> std::shared_ptr<ProcessGroup> {
    return std::make_shared<SingleProcessGroup>(o);
  });
  bool listed = false;
  for (const auto& n : available_backends()) listed = listed || n == "test-loopback";
  CHECK(listed);
  auto pg = init_process_group("test-loopback", Device::cpu(), ProcessGroupOptions{std::chrono::milliseconds(1234)});
  CHECK(pg->options().timeout.count() == 1234);
  CHECK_THROWS_WITH(register_process_group_backend("", nullptr), Catch::Contains("empty name"));
}
