/// @file distributed/mpi/mpi_process_group.cpp @brief MPI process group: MPI init/finalize, non-blocking collectives polled with a deadline, host staging of CUDA tensors, backend registration.
#include "distributed/mpi/mpi_process_group.h"

#include <mpi.h>

#include <chrono>
#include <climits>
#include <span>
#include <thread>

#include "core/grad_mode.h"
#include "kernels/accumulate.h"
#include "kernels/transfer.h"

namespace ember::distributed {

namespace {

std::string mpi_error_string(int code) {
  char buf[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, buf, &len) != MPI_SUCCESS) return "MPI error " + std::to_string(code);
  return std::string(buf, static_cast<size_t>(len));
}

#define EMBER_MPI_CHECK(expr, what)                                                                  \
  do {                                                                                               \
    const int ember_mpi_rc_ = (expr);                                                                \
    EMBER_CHECK(ember_mpi_rc_ == MPI_SUCCESS, "MPI ", what, ": ", #expr, " failed: ",               \
                mpi_error_string(ember_mpi_rc_));                                                    \
  } while (0)

// Initializes MPI once per process and finalizes it at exit when Ember initialized it.
struct MpiRuntime {
  bool we_initialized = false;
  MpiRuntime() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      int provided = 0;
      EMBER_MPI_CHECK(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided), "init");
      we_initialized = true;
    }
  }
  ~MpiRuntime() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (we_initialized && !finalized) MPI_Finalize();
  }
};

void ensure_mpi() { static MpiRuntime runtime; }

MPI_Datatype mpi_type(DType t) {
  switch (t) {
    case DType::f32: return MPI_FLOAT;
    case DType::f64: return MPI_DOUBLE;
    case DType::i64: return MPI_INT64_T;
  }
  EMBER_FAIL("MPI: unsupported dtype ", dtype_name(t));
}

// A CPU buffer for the collective: the tensor itself on CPU, else a host copy written back on completion.
struct Staged {
  Tensor target;  ///< the caller's tensor
  Tensor host;    ///< what MPI reads and writes
  explicit Staged(const Tensor& t) : target(t), host(t.device().is_cpu() ? t : kernels::transfer(t, Device::cpu())) {}
  void finish() {
    if (!host.is_same(target)) {
      NoGradGuard no_grad;
      target.copy_(host);
    }
  }
};

/// One request in flight; completes the Avg scaling and the copy back from host.
class MpiWork final : public Work {
 public:
  MpiWork(const char* what, const Tensor& t, ReduceOp op, int rank, int world, std::chrono::milliseconds timeout)
      : what_(what), staged_(t), op_(op), rank_(rank), world_(world), timeout_(timeout) {}
  MPI_Request* request() { return &req_; }
  void* buffer() { return staged_.host.data_ptr(); }
  const Tensor& host() const { return staged_.host; }

  bool test() override {
    if (done_) return true;
    int flag = 0;
    EMBER_MPI_CHECK(MPI_Test(&req_, &flag, MPI_STATUS_IGNORE), what_);
    if (!flag) return false;
    done_ = true;
    if (op_ == ReduceOp::Avg && world_ > 1) {
      Tensor h = staged_.host;
      kernels::scale_many(std::span<Tensor>(&h, 1), 1.0 / world_);
    }
    staged_.finish();
    return true;
  }

  void wait() override {
    const auto start = std::chrono::steady_clock::now();
    for (int64_t spins = 0; !test(); ++spins) {
      if (spins < 64) continue;  // a collective between close ranks usually completes within a few polls
      std::this_thread::sleep_for(std::chrono::microseconds(spins < 4096 ? 20 : 200));
      if (std::chrono::steady_clock::now() - start > timeout_)
        EMBER_FAIL("MPI ", what_, " of ", describe(staged_.target), " on rank ", rank_, " of ", world_,
                   " did not complete within ", timeout_.count(),
                   " ms: another rank has probably failed or is not calling the same collectives");
    }
  }

 private:
  const char* what_;
  Staged staged_;
  ReduceOp op_;
  int rank_, world_;
  std::chrono::milliseconds timeout_;
  MPI_Request req_ = MPI_REQUEST_NULL;
  bool done_ = false;
};

int count_of(const Tensor& t, const char* what) {
  EMBER_CHECK(t.numel() <= INT_MAX, "MPI ", what, ": ", describe(t), " has more than INT_MAX elements");
  return static_cast<int>(t.numel());
}

const bool registered = [] {
  register_process_group_backend("mpi", [](const ProcessGroupOptions& o) -> std::shared_ptr<ProcessGroup> {
    return std::make_shared<MpiProcessGroup>(o);
  });
  return true;
}();

}  // namespace

struct MpiProcessGroup::Comm {
  MPI_Comm comm = MPI_COMM_NULL;
};

MpiProcessGroup::MpiProcessGroup(ProcessGroupOptions options) : ProcessGroup(options), comm_(std::make_unique<Comm>()) {
  (void)registered;
  ensure_mpi();
  EMBER_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &comm_->comm), "init");
  EMBER_MPI_CHECK(MPI_Comm_set_errhandler(comm_->comm, MPI_ERRORS_RETURN), "init");
  EMBER_MPI_CHECK(MPI_Comm_rank(comm_->comm, &rank_), "init");
  EMBER_MPI_CHECK(MPI_Comm_size(comm_->comm, &size_), "init");
  MPI_Comm node = MPI_COMM_NULL;
  EMBER_MPI_CHECK(MPI_Comm_split_type(comm_->comm, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node), "init");
  EMBER_MPI_CHECK(MPI_Comm_rank(node, &local_rank_), "init");
  EMBER_MPI_CHECK(MPI_Comm_size(node, &local_size_), "init");
  MPI_Comm_free(&node);
}

MpiProcessGroup::~MpiProcessGroup() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && comm_->comm != MPI_COMM_NULL) MPI_Comm_free(&comm_->comm);
}

void MpiProcessGroup::abort(int code) { MPI_Abort(comm_->comm, code); }

std::unique_ptr<Work> MpiProcessGroup::do_all_reduce(Tensor& t, ReduceOp op) {
  auto work = std::make_unique<MpiWork>("all_reduce", t, op, rank_, size_, options().timeout);
  EMBER_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, work->buffer(), count_of(t, "all_reduce"), mpi_type(t.dtype()),
                                 MPI_SUM, comm_->comm, work->request()),
                  "all_reduce");
  return work;
}

void MpiProcessGroup::do_broadcast(Tensor& t, int root) {
  auto work = std::make_unique<MpiWork>("broadcast", t, ReduceOp::Sum, rank_, size_, options().timeout);
  EMBER_MPI_CHECK(
      MPI_Ibcast(work->buffer(), count_of(t, "broadcast"), mpi_type(t.dtype()), root, comm_->comm, work->request()),
      "broadcast");
  work->wait();
}

void MpiProcessGroup::do_barrier() {
  Tensor token = zeros(Shape{1});
  auto work = std::make_unique<MpiWork>("barrier", token, ReduceOp::Sum, rank_, size_, options().timeout);
  EMBER_MPI_CHECK(MPI_Ibarrier(comm_->comm, work->request()), "barrier");
  work->wait();
}

}  // namespace ember::distributed
