/// @file distributed/process_group.cpp @brief ProcessGroup argument checks and counters, the single-process group, the backend registry and init_process_group().
#include "distributed/process_group.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>

#include "kernels/transfer.h"

namespace ember::distributed {

const char* reduce_op_name(ReduceOp op) { return op == ReduceOp::Sum ? "sum" : "avg"; }

void ProcessGroup::check_tensor(const Tensor& t, const char* op) const {
  EMBER_CHECK(t.defined(), backend(), " ", op, ": the tensor is undefined");
  EMBER_CHECK(t.is_contiguous(), backend(), " ", op, ": the tensor must be contiguous (it is reduced in place), got ",
              describe(t), " with strides ", shape_str(t.strides()));
  EMBER_CHECK(supports(t.device().type), backend(), " ", op, ": tensors on ", t.device(),
              " are not supported by this backend, got ", describe(t));
}

std::unique_ptr<Work> ProcessGroup::all_reduce_async(Tensor& t, ReduceOp op) {
  check_tensor(t, "all_reduce");
  EMBER_CHECK(op != ReduceOp::Avg || is_floating(t.dtype()), backend(),
              " all_reduce: avg needs a floating tensor, got ", describe(t));
  ++stats_.all_reduce;
  stats_.bytes += static_cast<int64_t>(t.nbytes());
  return do_all_reduce(t, op);
}

void ProcessGroup::all_reduce(Tensor& t, ReduceOp op) { all_reduce_async(t, op)->wait(); }

void ProcessGroup::broadcast(Tensor& t, int root) {
  check_tensor(t, "broadcast");
  EMBER_CHECK(root >= 0 && root < size(), backend(), " broadcast: root ", root, " is not a rank of a group of size ",
              size());
  ++stats_.broadcast;
  stats_.bytes += static_cast<int64_t>(t.nbytes());
  do_broadcast(t, root);
}

void ProcessGroup::barrier() {
  ++stats_.barrier;
  do_barrier();
}

std::unique_ptr<Work> SingleProcessGroup::do_all_reduce(Tensor&, ReduceOp) {
  return std::make_unique<CompletedWork>();  // sum and mean over one rank are the identity
}

void SingleProcessGroup::do_broadcast(Tensor&, int) {}

// ---- registry -----------------------------------------------------------------------------------
namespace {
struct Registry {
  std::mutex mu;
  std::map<std::string, ProcessGroupFactory> factories;
};
Registry& registry() {
  static Registry r;
  return r;
}

// Reads a positive integer from the environment; 0 when unset.
int env_int(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return 0;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  EMBER_CHECK(end != v && *end == '\0' && n >= 1 && n <= 1 << 20, "launcher environment: ", name, "=\"", v,
              "\" is not a positive process count");
  return static_cast<int>(n);
}
}  // namespace

void register_process_group_backend(const std::string& name, ProcessGroupFactory factory) {
  EMBER_CHECK(!name.empty() && factory, "register_process_group_backend: empty name or factory");
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  r.factories[name] = std::move(factory);
}

std::vector<std::string> available_backends() {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  std::vector<std::string> names{"single"};
  for (const auto& entry : r.factories) names.push_back(entry.first);
  std::sort(names.begin(), names.end());
  return names;
}

Device device_for_rank(const ProcessGroup& group, DeviceType type) {
  if (type == DeviceType::CPU) return Device::cpu();
  const int devices = kernels::device_count(type);
  EMBER_CHECK(devices > 0, "device_for_rank: no ", device_type_name(type), " device on rank ", group.rank());
  return Device(type, group.local_rank() % devices);
}

int launcher_world_size() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"})
    if (int n = env_int(var); n > 0) return n;
  return 1;
}

bool launched_by_mpi() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "PMIX_RANK"})
    if (std::getenv(var) != nullptr) return true;
  return false;
}

std::shared_ptr<ProcessGroup> init_process_group(const std::string& backend, Device device,
                                                 ProcessGroupOptions options) {
  EMBER_CHECK(options.timeout.count() > 0, "init_process_group: the timeout must be positive, got ",
              options.timeout.count(), " ms");
  auto find = [](const std::string& name) -> ProcessGroupFactory {
    Registry& r = registry();
    std::lock_guard lock(r.mu);
    auto it = r.factories.find(name);
    return it == r.factories.end() ? ProcessGroupFactory{} : it->second;
  };
  auto list = [] {
    std::string s;
    for (const auto& n : available_backends()) s += (s.empty() ? "" : ", ") + n;
    return s;
  };
  std::string name = backend;
  if (name == "auto") {
    const int world = launcher_world_size();
    if (device.is_cuda() && find("nccl")) {
      name = "nccl";
    } else if (find("mpi") && launched_by_mpi()) {
      name = "mpi";
    } else {
      EMBER_CHECK(world == 1, "init_process_group: the launcher started ", world,
                  " processes but this program has no MPI backend linked (available: ", list(),
                  "); link ember_mpi or run a single process");
      name = "single";
    }
  }
  if (name == "single") {
    EMBER_CHECK(launcher_world_size() == 1, "init_process_group(\"single\"): the launcher started ",
                launcher_world_size(), " processes; a single-process group would train them independently");
    return std::make_shared<SingleProcessGroup>(options);
  }
  ProcessGroupFactory f = find(name);
  EMBER_CHECK(f, "init_process_group: unknown or unavailable backend \"", name, "\" (available: ", list(), ")");
  return f(options);
}

}  // namespace ember::distributed
