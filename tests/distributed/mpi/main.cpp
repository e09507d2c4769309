/// @file tests/distributed/mpi/main.cpp @brief Catch2 main of the multi-rank tests (run under mpirun): every rank runs every test; the first failure on any rank aborts the whole job.
#include <chrono>
#include <cstdio>
#include <exception>

#include "tests/catch_session.h"
#include "tests/distributed/mpi/world.h"

namespace ember::test::dist {
namespace {
std::shared_ptr<distributed::ProcessGroup> g_world;
}
distributed::ProcessGroup& world() { return *g_world; }
std::shared_ptr<distributed::ProcessGroup> world_ptr() { return g_world; }
}  // namespace ember::test::dist

int main(int argc, char** argv) {
  using namespace ember::distributed;
  try {
    // A collective that another rank never joins fails the test within 60 s instead of hanging.
    ember::test::dist::g_world = init_process_group("mpi", ember::Device::cpu(),
                                                    ProcessGroupOptions{std::chrono::seconds(60)});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ember_mpi_tests: cannot create the MPI group: %s\n", e.what());
    return 1;
  }
  auto& pg = ember::test::dist::world();
  int rc = 0;
  try {
    // abort after the first failure: a rank that failed must not wait in the next test's collectives
    rc = ember::test::run_catch_session(argc, argv, 1);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rank %d: %s\n", pg.rank(), e.what());
    rc = 1;
  }
  if (rc != 0) {
    std::fprintf(stderr, "rank %d of %d failed; aborting the job\n", pg.rank(), pg.size());
    pg.abort(1);  // the other ranks may be waiting in a collective this rank will never join
  }
  pg.barrier();
  ember::test::dist::g_world.reset();
  return 0;
}
