/// @file distributed/mpi/mpi_process_group.h @brief The MPI process group (library ember_mpi): CPU tensors (CUDA staged through host), non-blocking collectives with a timeout.
#pragma once
#include <memory>

#include "distributed/process_group.h"

namespace ember::distributed {

/// All ranks of MPI_COMM_WORLD (a private duplicate, errors returned, never fatal); the node-local rank
/// from MPI's own split by shared memory (MPI_Comm_split_type), whatever launcher started the job. Initializes MPI
/// on first use (MPI_THREAD_SERIALIZED) and finalizes it at exit. Every collective is non-blocking
/// (MPI_Iallreduce / MPI_Ibcast / MPI_Ibarrier); wait() polls and throws ember::Error on an MPI error
/// or when the options' timeout passes. CUDA tensors are staged through host memory.
/// Registered as backend "mpi" for init_process_group() when this library is linked.
class MpiProcessGroup final : public ProcessGroup {
 public:
  explicit MpiProcessGroup(ProcessGroupOptions options = {});
  ~MpiProcessGroup() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  int local_size() const override { return local_size_; }
  std::string backend() const override { return "mpi"; }
  bool supports(DeviceType) const override { return true; }
  void abort(int code) override;

 protected:
  std::unique_ptr<Work> do_all_reduce(Tensor& t, ReduceOp op) override;
  void do_broadcast(Tensor& t, int root) override;
  void do_barrier() override;

 private:
  struct Comm;
  std::unique_ptr<Comm> comm_;
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
};

}  // namespace ember::distributed
