/// @file tests/distributed/mpi/rank_failure.cpp @brief A 3-rank job in which rank 1 fails ("throw": an exception before a collective; "window": an exception in the last micro-batch of a DataParallel window; "stall": it never joins a collective): the other ranks must stop, non-zero, in bounded time.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <thread>

#include "tests/distributed/mlp_fixture.h"

using namespace ember;
using namespace ember::distributed;

int main(int argc, char** argv) {
  const bool stall = argc > 1 && std::strcmp(argv[1], "stall") == 0;
  const bool window = argc > 1 && std::strcmp(argv[1], "window") == 0;
  std::shared_ptr<ProcessGroup> pg;
  try {
    // "stall": rank 1 never joins, so the others' all_reduce times out after 2 s with an error.
    pg = init_process_group("mpi", Device::cpu(), ProcessGroupOptions{std::chrono::seconds(stall ? 2 : 60)});
    Tensor t = full(Shape{4}, 1.0);
    pg->all_reduce(t);  // everybody is alive
    if (window) {
      // Buckets of 64 bytes: the others start the early buckets during their last backward and then
      // wait in reduce() for rank 1, which fails after its first micro-batch.
      test::dist::Mlp m(1);
      DataParallel dp(pg, m.named(), {}, DataParallelOptions{.bucket_bytes = 64});
      for (int k = 0; k < 2; ++k) {
        if (pg->rank() == 1 && k == 1) throw Error("rank 1: simulated failure in the last micro-batch", __FILE__, __LINE__);
        dp.before_backward(k == 1);
        test::dist::loss_mean(m, 3 * k, 3 * k + 3).backward(full(Shape{}, 3.0));
      }
      std::vector<Tensor> g = m.grads();
      dp.reduce(g, 6);
      std::printf("rank %d: unexpectedly completed\n", pg->rank());
      return 0;
    }
    if (pg->rank() == 1) {
      if (stall) std::this_thread::sleep_for(std::chrono::seconds(60));
      else throw Error("rank 1: simulated failure in the training step", __FILE__, __LINE__);
    }
    pg->all_reduce(t);  // the others wait here for rank 1
    std::printf("rank %d: unexpectedly completed\n", pg->rank());
    return 0;
  } catch (const std::exception& e) {
    // The top-level handler every multi-rank program needs: report, then take the job down.
    std::fprintf(stderr, "rank %d: error: %s\n", pg ? pg->rank() : -1, e.what());
    if (pg) pg->abort(1);
    return 1;
  }
}
