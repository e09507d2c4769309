/// @file tests/distributed/mpi/nccl_multi_gpu.cpp @brief NCCL across ranks, one GPU each (mpirun -np 2); exits 77 (ctest "skipped") with fewer than 2 GPUs.
#include <cstdio>
#include <exception>

#include "distributed/process_group.h"
#include "kernels/transfer.h"

using namespace ember;
using namespace ember::distributed;

int main() {
  if (kernels::device_count(DeviceType::CUDA) < 2) {
    std::printf("nccl_multi_gpu: fewer than 2 GPUs; skipping\n");
    return 77;
  }
  std::shared_ptr<ProcessGroup> pg;
  try {
    pg = init_process_group("nccl", Device::cuda(0));
    const TensorOptions cuda = TensorOptions{}.set_device(Device::cuda(0));
    const double r = pg->rank() + 1;
    Tensor t = from_vector(std::vector<double>{r, -2 * r}, Shape{2}, cuda);
    pg->all_reduce(t, ReduceOp::Sum);
    const double s = pg->size() * (pg->size() + 1) / 2.0;  // 1 + 2 + ... + size
    EMBER_CHECK(t.to_vector<double>() == (std::vector<double>{s, -2 * s}), "all_reduce sum: got ", t);
    Tensor a = from_vector(std::vector<double>{r}, Shape{1}, cuda);
    pg->all_reduce(a, ReduceOp::Avg);
    EMBER_CHECK(a.item() == s / pg->size(), "all_reduce avg: got ", a);
    Tensor b = pg->rank() == 1 ? full(Shape{3}, 7.0, cuda) : zeros(Shape{3}, cuda);
    pg->broadcast(b, 1);
    EMBER_CHECK(b.to_vector<double>() == std::vector<double>(3, 7.0), "broadcast: got ", b);
    pg->barrier();
    std::printf("rank %d of %d: NCCL collectives ok\n", pg->rank(), pg->size());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rank %d: error: %s\n", pg ? pg->rank() : -1, e.what());
    if (pg) pg->abort(1);
    return 1;
  }
}
