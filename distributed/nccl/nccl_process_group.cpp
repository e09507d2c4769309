/// @file distributed/nccl/nccl_process_group.cpp @brief NCCL process group: unique-id bootstrap, non-blocking init with a timeout, ncclAllReduce/ncclBroadcast on Ember's stream (CPU tensors staged through the device), event-polled completion with async-error checks and a timeout, orderly or aborted shutdown, backend registration.
//
// The communicator is non-blocking (ncclConfig_t::blocking = 0), so that nothing can hang: every NCCL
// call may answer ncclInProgress, after which ncclCommGetAsyncError is polled until the communicator
// has settled, for at most the group's timeout. A rank that never joins, an asynchronous error or a
// timeout aborts the communicator (ncclCommAbort) and throws ember::Error; the group cannot be used
// after that. Compiled against the real NCCL (ember_cuda) and against the emulator's (ember_cuda_emu).
#include "distributed/nccl/nccl_process_group.h"

#include "kernels/cuda/device_context.h"
#include "kernels/dispatch.h"
#include "kernels/runtime_stats.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <thread>

namespace ember::distributed {

namespace {

void cuda_check(cudaError_t e, const char* expr, const char* file, int line) {
  if (e != cudaSuccess)
    detail::throw_error(detail::concat("NCCL group: ", expr, " failed: ", cudaGetErrorName(e), " (",
                                       cudaGetErrorString(e), ")"),
                        file, line);
}
#define EMBER_NCCL_CUDA_CALL(expr) cuda_check((expr), #expr, __FILE__, __LINE__)

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::f32: return ncclFloat32;
    case DType::f64: return ncclFloat64;
    case DType::i64: return ncclInt64;
  }
  EMBER_FAIL("NCCL: unsupported dtype ", dtype_name(t));
}

/// Whether every byte of the id is zero (what rank 0 sends when it could not make one).
bool all_zero(const ncclUniqueId& id) {
  for (char c : id.internal)
    if (c != 0) return false;
  return true;
}

/// "ncclRemoteError (remote process exited or there was a network error; <NCCL's last message>)".
std::string describe_result(ncclResult_t r) {
  return detail::concat(ncclGetErrorString(r), " (result ", static_cast<int>(r), "; ", ncclGetLastError(nullptr), ")");
}

}  // namespace

/// The communicator and what every NCCL call of the group needs, shared with the in-flight Work handles.
struct NcclProcessGroup::State {
  ncclComm_t comm = nullptr;
  bool aborted = false;  ///< the communicator was aborted (or destroyed): it must not be used again
  int rank = 0, world = 1;
  Device device = Device::cuda(0);  ///< the GPU of this rank: every call runs with it current
  cudaEvent_t ready = nullptr;      ///< recorded on the compute stream before each collective
  std::chrono::milliseconds timeout{};

  /// Polls the communicator until it is no longer ncclInProgress, for at most `limit`. Returns its
  /// state: ncclSuccess, an error, or ncclInProgress when the limit passed.
  ncclResult_t settle(std::chrono::milliseconds limit) const {
    const auto start = std::chrono::steady_clock::now();
    for (auto pause = std::chrono::microseconds(20);; pause = std::min(pause * 2, std::chrono::microseconds(1000))) {
      ncclResult_t state = ncclSuccess;
      const ncclResult_t r = ncclCommGetAsyncError(comm, &state);
      if (r != ncclSuccess) return r;
      if (state != ncclInProgress || std::chrono::steady_clock::now() - start > limit) return state;
      std::this_thread::sleep_for(pause);
    }
  }

  /// Aborts the communicator once: after an error or a timeout it is unusable, and the abort ends
  /// anything of it still queued or waiting for a peer.
  void abort() {
    if (comm != nullptr && !aborted) ncclCommAbort(comm);
    aborted = true;
  }

  /// Throws (after aborting) unless `r`, the result of NCCL call `expr`, settled when it is
  /// ncclInProgress, is ncclSuccess.
  void check(ncclResult_t r, const char* expr, const std::string& what, const char* file, int line) {
    if (r == ncclInProgress) r = settle(timeout);
    if (r == ncclSuccess) return;
    abort();
    if (r == ncclInProgress)
      detail::throw_error(detail::concat("NCCL ", what, " on rank ", rank, " of ", world, ": ", expr,
                                         " did not complete within ", timeout.count(),
                                         " ms: another rank has probably failed or not joined (the communicator was "
                                         "aborted)"),
                          file, line);
    detail::throw_error(detail::concat("NCCL ", what, " on rank ", rank, " of ", world, ": ", expr, " failed: ",
                                       describe_result(r), " (the communicator was aborted)"),
                        file, line);
  }

  /// Finalizes and destroys a healthy communicator within the timeout, else aborts it. Never throws.
  void shut_down() noexcept {
    if (comm == nullptr || aborted) return;
    ncclResult_t r = ncclCommFinalize(comm);  // flushes what is still queued
    if (r == ncclInProgress) r = settle(timeout);
    if (r == ncclSuccess) r = ncclCommDestroy(comm);
    if (r != ncclSuccess) ncclCommAbort(comm);
    aborted = true;
  }
};

/// Runs an NCCL call of the group named `name` (for messages) and checks it with State::check.
#define EMBER_NCCL_CALL(state, name, what, expr) (state).check((expr), (name), (what), __FILE__, __LINE__)

namespace {

/// Completion of one collective queued on Ember's stream.
class NcclWork final : public Work {
 public:
  /// Records the completion event on `stream` (the communication stream the collective was queued on).
  NcclWork(std::shared_ptr<NcclProcessGroup::State> state, std::string what, cudaStream_t stream)
      : state_(std::move(state)), what_(std::move(what)) {
    const kernels::DeviceScope on(state_->device);
    EMBER_NCCL_CUDA_CALL(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming));
    EMBER_NCCL_CUDA_CALL(cudaEventRecord(event_, stream));
  }
  ~NcclWork() override {
    if (event_ != nullptr) cudaEventDestroy(event_);
  }

  bool test() override {
    if (done_) return true;
    EMBER_CHECK(!state_->aborted, "NCCL ", what_, " on rank ", state_->rank, " of ", state_->world,
                ": the communicator was aborted (or the group destroyed) before it completed");
    const cudaError_t e = cudaEventQuery(event_);
    if (e != cudaSuccess && e != cudaErrorNotReady) EMBER_NCCL_CUDA_CALL(e);
    // Checked after completion too: a collective that failed (a peer aborted or vanished) may still
    // complete on the stream, without its result.
    ncclResult_t async = ncclSuccess;
    EMBER_NCCL_CALL(*state_, "ncclCommGetAsyncError", what_, ncclCommGetAsyncError(state_->comm, &async));
    if (async != ncclSuccess && async != ncclInProgress) {
      state_->abort();
      EMBER_FAIL("NCCL ", what_, " on rank ", state_->rank, " of ", state_->world, " failed: ", describe_result(async),
                 " (the communicator was aborted)");
    }
    return done_ = e == cudaSuccess;
  }

  /// The compute stream waits for the collective: the kernels queued after this (the optimizer) read
  /// the reduced values, and the host goes on.
  void wait_on_device() override {
    const kernels::DeviceScope on(state_->device);
    EMBER_NCCL_CUDA_CALL(cudaStreamWaitEvent(cuda::stream(), event_, 0));
    (void)test();  // reports a failure already known, without waiting
  }

  void wait() override {
    wait_on_device();  // ordered for the device too, whatever the host does next
    if (done_) return;
    kernels::count_host_sync(DeviceType::CUDA);  // the host waits for the device (polling the event)
    const auto start = std::chrono::steady_clock::now();
    while (!test()) {
      std::this_thread::sleep_for(std::chrono::microseconds(20));
      if (std::chrono::steady_clock::now() - start > state_->timeout) {
        state_->abort();  // unblocks the stream; the group is unusable now
        EMBER_FAIL("NCCL ", what_, " on rank ", state_->rank, " of ", state_->world, " did not complete within ",
                   state_->timeout.count(), " ms: another rank has probably failed (the communicator was aborted)");
      }
    }
  }

 private:
  std::shared_ptr<NcclProcessGroup::State> state_;
  std::string what_;
  cudaEvent_t event_ = nullptr;
  bool done_ = false;
};

const bool registered = [] {
  register_process_group_backend("nccl", [](const ProcessGroupOptions& o) -> std::shared_ptr<ProcessGroup> {
    std::shared_ptr<ProcessGroup> boot = launched_by_mpi() ? init_process_group("mpi", Device::cpu(), o)
                                                           : std::make_shared<SingleProcessGroup>(o);
    return std::make_shared<NcclProcessGroup>(std::move(boot), o);
  });
  return true;
}();

}  // namespace

NcclProcessGroup::NcclProcessGroup(std::shared_ptr<ProcessGroup> bootstrap, ProcessGroupOptions options)
    : ProcessGroup(options), bootstrap_(std::move(bootstrap)), state_(std::make_shared<State>()) {
  (void)registered;
  EMBER_CHECK(bootstrap_ != nullptr, "NcclProcessGroup: the bootstrap group is null");
  EMBER_CHECK(bootstrap_->supports(DeviceType::CPU), "NcclProcessGroup: the bootstrap group (",
              bootstrap_->backend(), ") must handle CPU tensors");
  state_->rank = rank();
  state_->world = size();
  state_->timeout = options.timeout;
  // Several ranks on a node: GPU (node-local rank % GPUs), from the bootstrap's own split (MPI's
  // shared-memory communicator), whatever the launcher. One rank: the current device.
  state_->device = bootstrap_->local_size() > 1 ? device_for_rank(*bootstrap_, DeviceType::CUDA)
                                                : Device::cuda(cuda::current_device());
  const kernels::DeviceScope on(state_->device);
  EMBER_NCCL_CUDA_CALL(cudaEventCreateWithFlags(&state_->ready, cudaEventDisableTiming));

  // ncclUniqueId (128 bytes) travels as 16 int64 over the bootstrap group. When rank 0 cannot make
  // one it sends zeros, so that every rank fails instead of the others waiting for an id.
  static_assert(sizeof(ncclUniqueId) % sizeof(int64_t) == 0);
  constexpr int64_t words = sizeof(ncclUniqueId) / sizeof(int64_t);
  ncclUniqueId id{};
  const ncclResult_t made = rank() == 0 ? ncclGetUniqueId(&id) : ncclSuccess;
  Tensor wire = zeros(Shape{words}, TensorOptions{}.set_dtype(DType::i64));
  if (rank() == 0 && made == ncclSuccess) std::memcpy(wire.data_ptr(), &id, sizeof(id));
  bootstrap_->broadcast(wire, 0);
  std::memcpy(&id, wire.data_ptr(), sizeof(id));
  EMBER_CHECK(made == ncclSuccess, "NCCL: ncclGetUniqueId failed on rank 0: ", describe_result(made));
  EMBER_CHECK(!all_zero(id), "NCCL: rank 0 could not make the communicator's ncclUniqueId (see rank 0's error)");

  // Non-blocking init: a rank that never joins makes the others fail after the timeout instead of
  // hanging in ncclCommInitRank.
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  EMBER_NCCL_CALL(*state_, "ncclCommInitRankConfig", "init (every rank joins)",
                  ncclCommInitRankConfig(&state_->comm, size(), id, rank(), &config));
}

NcclProcessGroup::~NcclProcessGroup() { state_->shut_down(); }

void NcclProcessGroup::abort(int code) {
  state_->abort();
  bootstrap_->abort(code);
}

Device NcclProcessGroup::device() const { return state_->device; }

cudaStream_t NcclProcessGroup::comm_stream_after_compute() {
  // The communication stream runs the collective as soon as the compute stream has produced its input,
  // while the compute stream goes on (the backward of earlier layers): one event per collective.
  EMBER_NCCL_CUDA_CALL(cudaEventRecord(state_->ready, cuda::stream()));
  EMBER_NCCL_CUDA_CALL(cudaStreamWaitEvent(cuda::comm_stream(), state_->ready, 0));
  return cuda::comm_stream();
}

void NcclProcessGroup::check_device(const Tensor& t, const char* op) const {
  EMBER_CHECK(t.device() == state_->device, "NCCL ", op, ": ", describe(t), " is not on this rank's device ",
              state_->device.str(), " (rank ", rank(), ")");
}

std::unique_ptr<Work> NcclProcessGroup::do_all_reduce(Tensor& t, ReduceOp op) {
  EMBER_CHECK(!state_->aborted, "NCCL all_reduce: the communicator was aborted after an earlier failure");
  if (t.device().is_cpu()) {  // through a device copy, and complete on return
    Tensor staged = t.to(state_->device);
    do_all_reduce(staged, op)->wait();
    t.copy_(staged);
    return std::make_unique<CompletedWork>();
  }
  check_device(t, "all_reduce");
  const kernels::DeviceScope on(state_->device);
  const std::string what = "all_reduce of " + describe(t);
  const cudaStream_t comm = comm_stream_after_compute();
  EMBER_NCCL_CALL(*state_, "ncclAllReduce", what,
                  ncclAllReduce(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()), nccl_type(t.dtype()),
                                op == ReduceOp::Sum ? ncclSum : ncclAvg, state_->comm, comm));
  return std::make_unique<NcclWork>(state_, what, comm);
}

void NcclProcessGroup::do_broadcast(Tensor& t, int root) {
  EMBER_CHECK(!state_->aborted, "NCCL broadcast: the communicator was aborted after an earlier failure");
  if (t.device().is_cpu()) {  // through a device copy
    Tensor staged = t.to(state_->device);
    do_broadcast(staged, root);
    t.copy_(staged);
    return;
  }
  check_device(t, "broadcast");
  const kernels::DeviceScope on(state_->device);
  const std::string what = "broadcast of " + describe(t) + " from rank " + std::to_string(root);
  const cudaStream_t comm = comm_stream_after_compute();
  EMBER_NCCL_CALL(*state_, "ncclBroadcast", what,
                  ncclBroadcast(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()), nccl_type(t.dtype()), root,
                                state_->comm, comm));
  NcclWork(state_, what, comm).wait();
}

void NcclProcessGroup::do_barrier() {
  Tensor token = zeros(Shape{1}, TensorOptions{}.set_device(state_->device));
  do_all_reduce(token, ReduceOp::Sum)->wait();
}

}  // namespace ember::distributed
