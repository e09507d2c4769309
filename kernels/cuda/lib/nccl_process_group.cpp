/// @file kernels/cuda/lib/nccl_process_group.cpp @brief NCCL process group: unique-id bootstrap, ncclAllReduce/ncclBroadcast on Ember's stream, event-polled completion with async-error checks and a timeout, backend registration.
#include "kernels/cuda/lib/nccl_process_group.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace ember::cuda {
cudaStream_t stream();  // kernels/cuda/runtime.cu
}  // namespace ember::cuda

namespace ember::distributed {

namespace {

void nccl_check(ncclResult_t r, const char* expr, const char* file, int line) {
  if (r != ncclSuccess)
    detail::throw_error(detail::concat("NCCL: ", expr, " failed: ", ncclGetErrorString(r), " (", ncclGetLastError(nullptr),
                                       ")"),
                        file, line);
}
void cuda_check(cudaError_t e, const char* expr, const char* file, int line) {
  if (e != cudaSuccess)
    detail::throw_error(detail::concat("NCCL group: ", expr, " failed: ", cudaGetErrorName(e), " (",
                                       cudaGetErrorString(e), ")"),
                        file, line);
}
#define EMBER_NCCL_CALL(expr) nccl_check((expr), #expr, __FILE__, __LINE__)
#define EMBER_NCCL_CUDA_CALL(expr) cuda_check((expr), #expr, __FILE__, __LINE__)

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::f32: return ncclFloat32;
    case DType::f64: return ncclFloat64;
    case DType::i64: return ncclInt64;
  }
  EMBER_FAIL("NCCL: unsupported dtype ", dtype_name(t));
}

int local_rank() {
  for (const char* var : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"})
    if (const char* v = std::getenv(var)) return std::atoi(v);
  return 0;
}

}  // namespace

struct NcclProcessGroup::State {
  ncclComm_t comm = nullptr;
  bool aborted = false;
};

namespace {

/// Completion of one collective queued on Ember's stream.
class NcclWork final : public Work {
 public:
  NcclWork(std::shared_ptr<NcclProcessGroup::State> state, std::string what, std::chrono::milliseconds timeout,
           int rank, int world)
      : state_(std::move(state)), what_(std::move(what)), timeout_(timeout), rank_(rank), world_(world) {
    EMBER_NCCL_CUDA_CALL(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming));
    EMBER_NCCL_CUDA_CALL(cudaEventRecord(event_, cuda::stream()));
  }
  ~NcclWork() override {
    if (event_ != nullptr) cudaEventDestroy(event_);
  }

  bool test() override {
    if (done_) return true;
    const cudaError_t e = cudaEventQuery(event_);
    if (e == cudaSuccess) return done_ = true;
    if (e != cudaErrorNotReady) EMBER_NCCL_CUDA_CALL(e);
    ncclResult_t async = ncclSuccess;
    EMBER_NCCL_CALL(ncclCommGetAsyncError(state_->comm, &async));
    EMBER_CHECK(async == ncclSuccess || async == ncclInProgress, "NCCL ", what_, " on rank ", rank_, " of ", world_,
                " failed: ", ncclGetErrorString(async));
    return false;
  }

  void wait() override {
    const auto start = std::chrono::steady_clock::now();
    while (!test()) {
      std::this_thread::sleep_for(std::chrono::microseconds(20));
      if (std::chrono::steady_clock::now() - start > timeout_) {
        if (!state_->aborted) ncclCommAbort(state_->comm);  // unblocks the stream; the group is unusable now
        state_->aborted = true;
        EMBER_FAIL("NCCL ", what_, " on rank ", rank_, " of ", world_, " did not complete within ", timeout_.count(),
                   " ms: another rank has probably failed (the communicator was aborted)");
      }
    }
  }

 private:
  std::shared_ptr<NcclProcessGroup::State> state_;
  std::string what_;
  std::chrono::milliseconds timeout_;
  int rank_, world_;
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
  int devices = 0;
  EMBER_NCCL_CUDA_CALL(cudaGetDeviceCount(&devices));
  EMBER_CHECK(devices > 0, "NcclProcessGroup: no CUDA device on rank ", rank());
  if (devices > 1) EMBER_NCCL_CUDA_CALL(cudaSetDevice(local_rank() % devices));

  // ncclUniqueId (128 bytes) travels as 16 int64 over the bootstrap group.
  static_assert(sizeof(ncclUniqueId) % sizeof(int64_t) == 0);
  constexpr int64_t words = sizeof(ncclUniqueId) / sizeof(int64_t);
  ncclUniqueId id{};
  if (rank() == 0) EMBER_NCCL_CALL(ncclGetUniqueId(&id));
  Tensor wire = zeros(Shape{words}, TensorOptions{}.set_dtype(DType::i64));
  if (rank() == 0) std::memcpy(wire.data_ptr(), &id, sizeof(id));
  bootstrap_->broadcast(wire, 0);
  std::memcpy(&id, wire.data_ptr(), sizeof(id));
  EMBER_NCCL_CALL(ncclCommInitRank(&state_->comm, size(), id, rank()));
}

NcclProcessGroup::~NcclProcessGroup() {
  if (state_->comm == nullptr) return;
  if (state_->aborted) return;
  ncclCommDestroy(state_->comm);
}

void NcclProcessGroup::abort(int code) {
  if (state_->comm != nullptr && !state_->aborted) ncclCommAbort(state_->comm);
  state_->aborted = true;
  bootstrap_->abort(code);
}

std::unique_ptr<Work> NcclProcessGroup::do_all_reduce(Tensor& t, ReduceOp op) {
  EMBER_CHECK(!state_->aborted, "NCCL all_reduce: the communicator was aborted after an earlier failure");
  EMBER_NCCL_CALL(ncclAllReduce(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()), nccl_type(t.dtype()),
                                op == ReduceOp::Sum ? ncclSum : ncclAvg, state_->comm, cuda::stream()));
  return std::make_unique<NcclWork>(state_, "all_reduce of " + describe(t), options().timeout, rank(), size());
}

void NcclProcessGroup::do_broadcast(Tensor& t, int root) {
  EMBER_CHECK(!state_->aborted, "NCCL broadcast: the communicator was aborted after an earlier failure");
  EMBER_NCCL_CALL(ncclBroadcast(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()), nccl_type(t.dtype()), root,
                                state_->comm, cuda::stream()));
  NcclWork(state_, "broadcast of " + describe(t), options().timeout, rank(), size()).wait();
}

void NcclProcessGroup::do_barrier() {
  Tensor token = zeros(Shape{1}, TensorOptions{}.set_device(Device::cuda(0)));
  do_all_reduce(token, ReduceOp::Sum)->wait();
}

}  // namespace ember::distributed
