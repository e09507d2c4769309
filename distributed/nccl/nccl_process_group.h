/// @file distributed/nccl/nccl_process_group.h @brief The NCCL process group (real and emulated CUDA builds): CUDA tensors, collectives on Ember's stream, the ncclUniqueId broadcast through a CPU bootstrap group.
#pragma once
#include <cuda_runtime.h>

#include <memory>

#include "distributed/process_group.h"

namespace ember::distributed {

/// NCCL communicator over the ranks of `bootstrap` (a CPU group: MPI under mpirun, or a world of
/// one): rank 0 makes the ncclUniqueId, the bootstrap broadcasts it, every rank joins with a
/// non-blocking ncclCommInitRankConfig and polls it for at most the options' timeout (a rank that
/// never joins: ember::Error, not a hang). Collectives run on the device's communication stream
/// (ember::cuda::comm_stream()) after an event recorded on its compute stream, so they are ordered
/// after the kernels that produced their input while the compute stream goes on (the backward of
/// earlier layers overlaps the gradient all-reduces). Work::wait_on_device() makes the compute stream
/// wait for a collective's completion event; wait() also polls that event and NCCL's async error on
/// the host, and aborts the communicator and throws on an error or after the timeout (the group is
/// unusable after that). The destructor finalizes and destroys a healthy communicator, else aborts it.
/// Device: with several ranks on a node, GPU (node-local rank % GPUs on the node), the node-local
/// rank coming from the bootstrap group (MPI's shared-memory split, whatever the launcher); with one,
/// the current device. Every call runs with that device current; its tensors must live there (or on
/// the CPU). device_for_rank() gives the same device to the training program. Registered as backend "nccl" for init_process_group() (bootstrap: "mpi" when launched by
/// mpirun, else a single-process group). Built against the real NCCL (ember_cuda) and the emulator's
/// (ember_cuda_emu, kernels/cuda/emulator/nccl.cpp).
class NcclProcessGroup final : public ProcessGroup {
 public:
  explicit NcclProcessGroup(std::shared_ptr<ProcessGroup> bootstrap, ProcessGroupOptions options = {});
  ~NcclProcessGroup() override;

  int rank() const override { return bootstrap_->rank(); }
  int size() const override { return bootstrap_->size(); }
  int local_rank() const override { return bootstrap_->local_rank(); }
  int local_size() const override { return bootstrap_->local_size(); }
  std::string backend() const override { return "nccl"; }
  /// CUDA tensors; CPU tensors too (DataParallel's layout table, the effective-batch check), staged
  /// through a device copy, and complete when the call returns.
  bool supports(DeviceType t) const override { return t == DeviceType::CUDA || t == DeviceType::CPU; }
  void abort(int code) override;
  /// The GPU this rank communicates on.
  Device device() const;

  struct State;  ///< the communicator, shared with the in-flight Work handles (implementation detail)

 protected:
  std::unique_ptr<Work> do_all_reduce(Tensor& t, ReduceOp op) override;
  void do_broadcast(Tensor& t, int root) override;
  void do_barrier() override;

 private:
  void check_device(const Tensor& t, const char* op) const;
  /// Makes the communication stream wait for the compute stream's work so far; returns it.
  cudaStream_t comm_stream_after_compute();
  std::shared_ptr<ProcessGroup> bootstrap_;
  std::shared_ptr<State> state_;
};

}  // namespace ember::distributed
