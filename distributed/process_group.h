/// @file distributed/process_group.h @brief ProcessGroup (rank, size, all_reduce sum/avg, broadcast, barrier), its async Work handle, the backend registry and init_process_group().
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace ember::distributed {

enum class ReduceOp { Sum, Avg };
const char* reduce_op_name(ReduceOp op);

/// An asynchronous collective in flight. wait() returns once the tensor holds the result, or throws
/// ember::Error (a backend failure, or no completion within the group's timeout: another rank has
/// probably failed). Destroying an unfinished Work does not wait.
class Work {
 public:
  virtual ~Work() = default;
  /// Polls (and drives progress); true once complete. Throws on a backend failure.
  virtual bool test() = 0;
  /// Blocks the host until complete (or the timeout).
  virtual void wait() = 0;
  /// Orders the device's later work after the collective without blocking the host (NCCL: the
  /// compute stream waits for the communication stream's completion event); the host-side backends
  /// have no device to order, so they wait. A failure shows at a later test() or wait().
  virtual void wait_on_device() { wait(); }
};

/// Collectives issued through a group, counted by kind (for tests and training summaries).
struct CollectiveStats {
  int64_t all_reduce = 0;
  int64_t broadcast = 0;
  int64_t barrier = 0;
  int64_t bytes = 0;  ///< payload bytes of all all_reduce and broadcast calls (per rank)
};

struct ProcessGroupOptions {
  /// A collective that does not complete within this time throws instead of hanging.
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};
};

/// A set of processes that communicate, in the spirit of torch.distributed's ProcessGroup. Every
/// collective must be called by all ranks in the same order. Tensors are reduced/broadcast in place
/// and must be contiguous, f32/f64/i64 (Avg: floating only), on a device the backend accepts.
class ProcessGroup {
 public:
  explicit ProcessGroup(ProcessGroupOptions o = {}) : options_(o) {}
  virtual ~ProcessGroup() = default;
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// This rank's position among the ranks on its node, and how many there are (the MPI group splits by
  /// shared memory, MPI_Comm_split_type; a single process is 0 of 1). A rank uses GPU local_rank() %
  /// (GPUs on the node): device_for_rank().
  virtual int local_rank() const { return 0; }
  virtual int local_size() const { return 1; }
  /// "single", "mpi" or "nccl".
  virtual std::string backend() const = 0;
  /// Whether this backend reduces tensors on devices of this type.
  virtual bool supports(DeviceType t) const = 0;

  /// Starts an in-place all-reduce of `t` across all ranks.
  std::unique_ptr<Work> all_reduce_async(Tensor& t, ReduceOp op = ReduceOp::Sum);
  /// Blocking all-reduce (all_reduce_async(t, op)->wait()).
  void all_reduce(Tensor& t, ReduceOp op = ReduceOp::Sum);
  /// Copies root's `t` into every rank's `t` (same shape and dtype everywhere).
  void broadcast(Tensor& t, int root = 0);
  /// Returns once every rank has entered it.
  void barrier();
  /// Terminates every rank of the group with exit code `code` (MPI_Abort), so that the others do not
  /// wait for a rank that failed. For a program's top-level error handler only (the library never
  /// calls it); the single-process group returns and leaves exiting to the caller.
  virtual void abort(int code) { (void)code; }

  const CollectiveStats& stats() const { return stats_; }
  const ProcessGroupOptions& options() const { return options_; }

 protected:
  virtual std::unique_ptr<Work> do_all_reduce(Tensor& t, ReduceOp op) = 0;
  virtual void do_broadcast(Tensor& t, int root) = 0;
  virtual void do_barrier() = 0;

 private:
  void check_tensor(const Tensor& t, const char* op) const;

  ProcessGroupOptions options_;
  CollectiveStats stats_;
};

/// A Work that is already complete (single process, or a synchronous backend step).
class CompletedWork final : public Work {
 public:
  bool test() override { return true; }
  void wait() override {}
};

/// World of one: every collective is the identity. The default; needs no MPI at run time.
class SingleProcessGroup final : public ProcessGroup {
 public:
  explicit SingleProcessGroup(ProcessGroupOptions o = {}) : ProcessGroup(o) {}
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "single"; }
  bool supports(DeviceType) const override { return true; }

 protected:
  std::unique_ptr<Work> do_all_reduce(Tensor& t, ReduceOp op) override;
  void do_broadcast(Tensor& t, int root) override;
  void do_barrier() override {}
};

// ---- backends and creation --------------------------------------------------------------------

using ProcessGroupFactory = std::function<std::shared_ptr<ProcessGroup>(const ProcessGroupOptions&)>;

/// Makes a backend available to init_process_group() under `name`. The MPI backend (library
/// ember_mpi) and the NCCL backend (library ember_cuda) register themselves when linked.
void register_process_group_backend(const std::string& name, ProcessGroupFactory factory);
/// Names of the registered backends ("single" always), sorted.
std::vector<std::string> available_backends();

/// The device a rank of `group` works on: for CUDA, GPU local_rank() % (number of GPUs); the CPU otherwise.
Device device_for_rank(const ProcessGroup& group, DeviceType type);

/// Number of processes the launcher started (OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_SIZE; 1 when not
/// started by mpirun). Throws on a malformed value.
int launcher_world_size();
/// True when the environment says the process was started by an MPI launcher.
bool launched_by_mpi();

/// Creates the group from the environment. `backend`:
///  - "auto": for CUDA training "nccl" when registered, else "mpi" when registered and launched by
///    mpirun, else "single". Throws when mpirun started several processes but no MPI backend is linked.
///  - "single", "mpi", "nccl": that backend (throws, listing the available ones, when not linked).
/// `device` is where the tensors to reduce live (only used by "auto").
std::shared_ptr<ProcessGroup> init_process_group(const std::string& backend = "auto", Device device = Device::cpu(),
                                                 ProcessGroupOptions options = {});

}  // namespace ember::distributed
