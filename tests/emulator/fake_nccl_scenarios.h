/// @file tests/emulator/fake_nccl_scenarios.h @brief What one rank does in the emulated-NCCL tests, shared by the ranks-as-threads tests (test_fake_nccl.cpp) and the ranks-as-processes helper (fake_nccl_rank.cpp): inputs, scenarios, and their results as plain numbers.
#pragma once
#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace fake_nccl_test {

/// Elements of the all-reduce, broadcast and reduce tests: many steps of a 256-byte slot, and a last
/// partial one (the tests set EMBER_EMU_NCCL_CHUNK_BYTES=256).
constexpr std::size_t kCount = 1001;
constexpr std::size_t kBlock = 101;  ///< all-gather sendcount, reduce-scatter recvcount
constexpr float kSentinel = -12345.0f;

// Inputs of rank r at element i: small multiples of 1/4 (sums are exact in float), different per rank.
inline float input_f32(int r, std::size_t i) {
  return float(int((i * 7 + std::size_t(r) * 13) % 23) - 11) * 0.25f + float(r);
}
inline double input_f64(int r, std::size_t i) { return double(input_f32(r, i)) * 1.5 - 0.125 * r; }
inline std::int32_t input_i32(int r, std::size_t i) { return std::int32_t((i * 5 + std::size_t(r) * 3) % 7) - 3 + r; }
inline std::int64_t input_i64(int r, std::size_t i) { return (std::int64_t(i) * 1000003 + r * 77) % 1000 - 500; }
inline std::uint8_t input_u8(int r, std::size_t i) { return std::uint8_t((i * 37 + std::size_t(r) * 101) % 256); }

/// Results of one rank: named number lists ("allreduce_sum_f32", "init" -> {ncclResult_t}) and notes.
struct Results {
  std::map<std::string, std::vector<double>> values;
  std::map<std::string, std::string> notes;
  void put(const std::string& key, double v) { values[key] = {v}; }
  double get(const std::string& key) const {
    auto it = values.find(key);
    return it == values.end() || it->second.empty() ? -1.0 : it->second[0];
  }
  /// A recorded ncclResult_t (ncclNumResults when missing).
  ncclResult_t status(const std::string& key) const {
    return values.count(key) ? ncclResult_t(int(get(key))) : ncclNumResults;
  }
};

/// Device memory for `n` elements of T.
template <class T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::size_t n) : n_(n) { cudaMalloc(reinterpret_cast<void**>(&p_), n * sizeof(T)); }
  DeviceBuffer(std::size_t n, T fill) : DeviceBuffer(n) { upload(std::vector<T>(n, fill)); }
  ~DeviceBuffer() { cudaFree(p_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return p_; }
  void upload(const std::vector<T>& v) { cudaMemcpy(p_, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice); }
  std::vector<T> download() const {
    std::vector<T> v(n_);
    cudaMemcpy(v.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost);
    return v;
  }

 private:
  T* p_ = nullptr;
  std::size_t n_;
};

/// Rank r's inputs of one type for n elements.
template <class T, class F>
std::vector<T> inputs(int r, std::size_t n, F f) {
  std::vector<T> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = f(r, i);
  return v;
}

template <class T>
std::vector<double> as_doubles(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

/// The id named by a segment name (what the process helper receives on its command line).
inline ncclUniqueId id_from_name(const std::string& name) {
  ncclUniqueId id{};
  std::memcpy(id.internal, name.c_str(), std::min(name.size(), sizeof id.internal - 1));
  return id;
}

inline double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

/// Records a call's result under `key` (and the message of a failure).
inline ncclResult_t record(Results& out, const std::string& key, ncclResult_t r) {
  out.put(key, double(r));
  if (r != ncclSuccess) out.notes[key] = ncclGetLastError(nullptr);
  return r;
}

/// Joins the communicator; "init" holds the result. nullptr when it failed.
inline ncclComm_t join(Results& out, int nranks, int rank, const ncclUniqueId& id) {
  ncclComm_t comm = nullptr;
  const auto start = std::chrono::steady_clock::now();
  record(out, "init", ncclCommInitRank(&comm, nranks, id, rank));
  out.put("init_ms", ms_since(start));
  return comm;
}

/// One all-reduce of T with inputs f, out of place (in_place: sendbuff == recvbuff), synchronized.
template <class T, class F>
void all_reduce(Results& out, const std::string& key, ncclComm_t comm, cudaStream_t s, int rank, ncclDataType_t type,
                ncclRedOp_t op, F f, bool in_place) {
  DeviceBuffer<T> send(kCount), recv(kCount, T(kSentinel));
  send.upload(inputs<T>(rank, kCount, f));
  record(out, "status_" + key,
         ncclAllReduce(send.get(), in_place ? send.get() : recv.get(), kCount, type, op, comm, s));
  cudaStreamSynchronize(s);
  out.values[key] = as_doubles(in_place ? send.download() : recv.download());
}

/// Every collective kind across the communicator: all-reduce (each op, several types, in and out of
/// place), broadcast from the last rank, ncclBcast from rank 1, reduce to the last rank, all-gather,
/// reduce-scatter, and a group of three collectives.
inline void collectives(Results& out, ncclComm_t comm, int rank, int nranks) {
  cudaStream_t s = nullptr;
  cudaStreamCreate(&s);
  all_reduce<float>(out, "allreduce_sum_f32", comm, s, rank, ncclFloat32, ncclSum, input_f32, false);
  all_reduce<float>(out, "allreduce_avg_f32", comm, s, rank, ncclFloat32, ncclAvg, input_f32, true);
  all_reduce<float>(out, "allreduce_max_f32", comm, s, rank, ncclFloat32, ncclMax, input_f32, false);
  all_reduce<double>(out, "allreduce_sum_f64", comm, s, rank, ncclFloat64, ncclSum, input_f64, true);
  all_reduce<std::int32_t>(out, "allreduce_prod_i32", comm, s, rank, ncclInt32, ncclProd, input_i32, false);
  all_reduce<std::int32_t>(out, "allreduce_avg_i32", comm, s, rank, ncclInt32, ncclAvg, input_i32, false);
  all_reduce<std::int64_t>(out, "allreduce_min_i64", comm, s, rank, ncclInt64, ncclMin, input_i64, false);
  all_reduce<std::uint8_t>(out, "allreduce_sum_u8", comm, s, rank, ncclUint8, ncclSum, input_u8, false);

  const int last = nranks - 1, second = 1 % nranks;
  {
    DeviceBuffer<float> send(kCount), recv(kCount, kSentinel);
    send.upload(inputs<float>(rank, kCount, input_f32));
    record(out, "status_broadcast", ncclBroadcast(send.get(), recv.get(), kCount, ncclFloat32, last, comm, s));
    cudaStreamSynchronize(s);
    out.values["broadcast_f32"] = as_doubles(recv.download());
  }
  {
    DeviceBuffer<std::int64_t> buf(kCount);
    buf.upload(inputs<std::int64_t>(rank, kCount, input_i64));
    record(out, "status_bcast", ncclBcast(buf.get(), kCount, ncclInt64, second, comm, s));
    cudaStreamSynchronize(s);
    out.values["bcast_i64"] = as_doubles(buf.download());
  }
  {
    DeviceBuffer<float> send(kCount), recv(kCount, kSentinel);
    send.upload(inputs<float>(rank, kCount, input_f32));
    record(out, "status_reduce", ncclReduce(send.get(), recv.get(), kCount, ncclFloat32, ncclSum, last, comm, s));
    cudaStreamSynchronize(s);
    out.values["reduce_sum_f32"] = as_doubles(recv.download());
  }
  {
    DeviceBuffer<float> send(kBlock), recv(kBlock * std::size_t(nranks), kSentinel);
    send.upload(inputs<float>(rank, kBlock, input_f32));
    record(out, "status_allgather", ncclAllGather(send.get(), recv.get(), kBlock, ncclFloat32, comm, s));
    cudaStreamSynchronize(s);
    out.values["allgather_f32"] = as_doubles(recv.download());
  }
  {
    DeviceBuffer<float> send(kBlock * std::size_t(nranks)), recv(kBlock, kSentinel);
    send.upload(inputs<float>(rank, kBlock * std::size_t(nranks), input_f32));
    record(out, "status_reducescatter",
           ncclReduceScatter(send.get(), recv.get(), kBlock, ncclFloat32, ncclSum, comm, s));
    cudaStreamSynchronize(s);
    out.values["reducescatter_sum_f32"] = as_doubles(recv.download());
  }
  {
    DeviceBuffer<float> a(kCount), b(kCount);
    DeviceBuffer<double> c(kCount);
    a.upload(inputs<float>(rank, kCount, input_f32));
    b.upload(inputs<float>(rank, kCount, input_f32));
    c.upload(inputs<double>(rank, kCount, input_f64));
    record(out, "status_group_start", ncclGroupStart());
    record(out, "status_group_allreduce", ncclAllReduce(a.get(), a.get(), kCount, ncclFloat32, ncclSum, comm, s));
    record(out, "status_group_broadcast", ncclBroadcast(b.get(), b.get(), kCount, ncclFloat32, second, comm, s));
    record(out, "status_group_max", ncclAllReduce(c.get(), c.get(), kCount, ncclFloat64, ncclMax, comm, s));
    record(out, "status_group_end", ncclGroupEnd());
    cudaStreamSynchronize(s);
    out.values["group_allreduce_sum_f32"] = as_doubles(a.download());
    out.values["group_broadcast_f32"] = as_doubles(b.download());
    out.values["group_allreduce_max_f64"] = as_doubles(c.download());
  }
  cudaStreamDestroy(s);
}

/// Scenario "collectives": join, run every collective, destroy.
inline Results scenario_collectives(int nranks, int rank, const ncclUniqueId& id) {
  Results out;
  ncclComm_t comm = join(out, nranks, rank, id);
  if (comm == nullptr) return out;
  collectives(out, comm, rank, nranks);
  record(out, "destroy", ncclCommDestroy(comm));
  return out;
}

/// Scenario "init": join and destroy (the result and message of the init are what matters).
inline Results scenario_init(int nranks, int rank, const ncclUniqueId& id) {
  Results out;
  if (ncclComm_t comm = join(out, nranks, rank, id)) record(out, "destroy", ncclCommDestroy(comm));
  return out;
}

/// Scenario "arrive": join, all-reduce into a sentinel-filled output while some peer does not take part;
/// records the async error, whether the output stayed untouched and how long the wait took; aborts.
inline Results scenario_arrive(int nranks, int rank, const ncclUniqueId& id) {
  Results out;
  ncclComm_t comm = join(out, nranks, rank, id);
  if (comm == nullptr) return out;
  cudaStream_t s = nullptr;
  cudaStreamCreate(&s);
  DeviceBuffer<float> send(kCount), recv(kCount, kSentinel);
  send.upload(inputs<float>(rank, kCount, input_f32));
  const auto start = std::chrono::steady_clock::now();
  record(out, "status_allreduce", ncclAllReduce(send.get(), recv.get(), kCount, ncclFloat32, ncclSum, comm, s));
  cudaStreamSynchronize(s);
  out.put("wait_ms", ms_since(start));
  ncclResult_t async = ncclSuccess;
  record(out, "status_get_async", ncclCommGetAsyncError(comm, &async));
  out.put("async", double(async));
  out.notes["async"] = ncclGetLastError(nullptr);
  out.put("untouched", recv.download() == std::vector<float>(kCount, kSentinel) ? 1.0 : 0.0);
  record(out, "abort", ncclCommAbort(comm));
  cudaStreamDestroy(s);
  return out;
}

/// Scenario "silent": join, take part in nothing for `stay_ms`, then destroy.
inline Results scenario_silent(int nranks, int rank, const ncclUniqueId& id, int stay_ms) {
  Results out;
  ncclComm_t comm = join(out, nranks, rank, id);
  if (comm == nullptr) return out;
  std::this_thread::sleep_for(std::chrono::milliseconds(stay_ms));
  record(out, "destroy", ncclCommDestroy(comm));
  return out;
}

/// Scenario "abort": join, wait `delay_ms`, abort.
inline Results scenario_abort(int nranks, int rank, const ncclUniqueId& id, int delay_ms) {
  Results out;
  ncclComm_t comm = join(out, nranks, rank, id);
  if (comm == nullptr) return out;
  std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
  record(out, "abort", ncclCommAbort(comm));
  return out;
}

/// Writes results as lines: "v KEY N V1 ... VN" and "n KEY TEXT".
inline void print(const Results& r, std::FILE* f) {
  for (const auto& [key, values] : r.values) {
    std::fprintf(f, "v %s %zu", key.c_str(), values.size());
    for (double v : values) std::fprintf(f, " %.17g", v);
    std::fprintf(f, "\n");
  }
  for (const auto& [key, text] : r.notes) {
    std::string one_line = text;
    for (char& ch : one_line)
      if (ch == '\n') ch = ' ';
    std::fprintf(f, "n %s %s\n", key.c_str(), one_line.c_str());
  }
}

}  // namespace fake_nccl_test
