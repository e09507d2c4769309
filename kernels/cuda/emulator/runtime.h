/// @file kernels/cuda/emulator/runtime.h @brief Emulated CUDA runtime: the emulator's configuration and test API (ember::emu) and the CUDA runtime API subset Ember uses (devices, memory, lazy streams, events), implemented in runtime.cpp.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/cuda/emulator/types.h"

namespace ember::emu {

// ---- schedules of a grid's threads (scheduler.cpp) -----------------------------------------------------

/// Order in which a block's runnable threads are resumed at each step, and blocks are handed out.
struct Schedule {
  enum class Order { forward, reverse, random };
  Order order = Order::forward;
  std::uint64_t seed = 0;
  static Schedule forward() { return {}; }
  static Schedule reverse() { return {Order::reverse, 0}; }
  static Schedule random(std::uint64_t seed) { return {Order::random, seed}; }
  bool operator==(const Schedule&) const = default;
};
/// Parses "forward", "reverse", "random" (seed 0) or "random:SEED".
std::optional<Schedule> parse_schedule(std::string_view s);
/// Schedule of the following launches (initially from EMBER_EMU_SCHEDULE, default forward).
void set_schedule(Schedule s);
Schedule schedule();
/// Stack size of each emulated thread (default 64 KiB, or EMBER_EMU_STACK_KB).
void set_stack_size(std::size_t bytes);
std::size_t stack_size();

// ---- streams ----------------------------------------------------------------------------------------

/// When queued device work runs.
enum class StreamMode {
  /// Work runs only when something waits for it (a synchronize, a blocking copy, an implicitly
  /// synchronizing call, an event that another stream's work needs), and then in an adversarial order:
  /// only what the wait needs, and among independent streams the most recently queued work first, so
  /// a missing cudaStreamWaitEvent reads stale or poisoned memory every time. The default.
  lazy,
  /// Work runs when it is queued (launches are synchronous), as the emulator did before streams.
  eager,
};
/// Parses "lazy" or "eager".
std::optional<StreamMode> parse_stream_mode(std::string_view s);
/// Mode of the following work (initially from EMBER_EMU_STREAMS, default lazy).
void set_stream_mode(StreamMode m);
StreamMode stream_mode();

// ---- devices and memory -----------------------------------------------------------------------------

inline constexpr std::size_t kTotalGlobalMem = std::size_t{16} << 30;
inline constexpr std::size_t kMaxDynamicShared = 228 * 1024;
inline constexpr int kMultiProcessors = 8;  // fixed, so grid sizes (and float results) do not depend on the host

/// Number of emulated devices: EMBER_EMU_DEVICES (default 1), read once.
int device_count();
/// cudaMalloc fails with cudaErrorMemoryAllocation when a device's bytes in use would exceed `bytes`
/// (SIZE_MAX: no limit).
void set_memory_limit(std::size_t bytes);
/// Bytes cudaMalloc'd and not freed on the current device.
std::size_t memory_in_use();

// ---- errors -----------------------------------------------------------------------------------------

/// Explanation of the most recent error recorded on this host thread (launch errors name block,
/// thread, file:line; faults name the operation and the memory).
std::string last_error_message();

// ---- counters (per host thread, counted inside the emulated API) ------------------------------------

struct Counters {
  std::uint64_t kernel_launches = 0;
  /// Calls that block the host until the device has done work: stream/event/device synchronize, a
  /// blocking copy (cudaMemcpy to or from the host, cudaMemcpyAsync into pageable host memory),
  /// cudaFree and cudaFreeHost (implicitly synchronizing).
  std::uint64_t host_syncs = 0;
  std::uint64_t bytes_host_to_device = 0, bytes_device_to_host = 0, bytes_device_to_device = 0;
  /// Emulated library functions (cuBLAS, cuDNN, NCCL) that queue device work, by name.
  std::map<std::string, std::uint64_t> library_calls;
  /// host_syncs by the API function that blocked.
  std::map<std::string, std::uint64_t> syncs_by_call;
  std::uint64_t library_call_count(const std::string& name) const {
    auto it = library_calls.find(name);
    return it == library_calls.end() ? 0 : it->second;
  }
};
/// The calling host thread's counters since it started or since reset_counters().
Counters counters();
void reset_counters();

// ---- trace of queued work (for tests of ordering) ---------------------------------------------------

struct TraceEntry {
  std::uint64_t seq = 0;  ///< order of queueing, process-wide
  int device = 0;
  std::uint64_t stream = 0;  ///< 0: the device's legacy default stream, else the stream's creation number
  std::string name;          ///< "kernel", "cudaMemcpyAsync", "cudaEventRecord", "ncclAllReduce", ...
};
/// Starts (clearing it) or stops recording every operation queued on any stream.
void set_trace(bool on);
std::vector<TraceEntry> trace();
/// The creation number of a stream as TraceEntry::stream reports it (0 for nullptr / legacy).
std::uint64_t stream_id(cudaStream_t s);

namespace detail {
cudaError_t func_set_attribute(int attr, int value);  // attr: a cudaFuncAttribute
}  // namespace detail

}  // namespace ember::emu

// ---- the CUDA runtime API subset (global namespace, as in CUDA) ----------------------------------------
EMBER_FAKE_API_BEGIN
const char* cudaGetErrorName(cudaError_t e);
/// CUDA's text; for the most recent error of this host thread, with the emulator's explanation appended.
const char* cudaGetErrorString(cudaError_t e);
/// Returns the last error of this host thread and resets it to cudaSuccess (a sticky device error is
/// recorded again by the next call that touches the device, as on a GPU).
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();

cudaError_t cudaGetDeviceCount(int* n);
cudaError_t cudaGetDevice(int* d);
cudaError_t cudaSetDevice(int d);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
/// Waits for all work of the current device.
cudaError_t cudaDeviceSynchronize();
/// Drops the current device's queued work and clears its sticky error (allocations stay valid: unlike
/// CUDA, which destroys them).
cudaError_t cudaDeviceReset();

cudaError_t cudaMalloc(void** p, std::size_t n);
template <class T>
cudaError_t cudaMalloc(T** p, std::size_t n) {
  return cudaMalloc(reinterpret_cast<void**>(p), n);
}
/// Waits for the device's work first (implicitly synchronizing, as in CUDA).
cudaError_t cudaFree(void* p);
cudaError_t cudaMallocHost(void** p, std::size_t n);
template <class T>
cudaError_t cudaMallocHost(T** p, std::size_t n) {
  return cudaMallocHost(reinterpret_cast<void**>(p), n);
}
cudaError_t cudaHostAlloc(void** p, std::size_t n, unsigned flags);
template <class T>
cudaError_t cudaHostAlloc(T** p, std::size_t n, unsigned flags) {
  return cudaHostAlloc(reinterpret_cast<void**>(p), n, flags);
}
cudaError_t cudaFreeHost(void* p);
/// The device address of page-locked host memory from cudaHostAlloc (the same pointer: one address space).
cudaError_t cudaHostGetDevicePointer(void** device, void* host, unsigned flags);
cudaError_t cudaMemGetInfo(std::size_t* free_bytes, std::size_t* total_bytes);

cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t n, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t n, cudaMemcpyKind kind, cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* dst, int value, std::size_t n);
cudaError_t cudaMemsetAsync(void* dst, int value, std::size_t n, cudaStream_t stream = nullptr);

cudaError_t cudaStreamCreate(cudaStream_t* s);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamQuery(cudaStream_t s);
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags = 0);
cudaError_t cudaStreamGetFlags(cudaStream_t s, unsigned* flags);

cudaError_t cudaEventCreate(cudaEvent_t* e);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = nullptr);
cudaError_t cudaEventQuery(cudaEvent_t e);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);

/// Accepted (the emulator allows up to 228 KiB of dynamic shared memory to every kernel).
template <class F>
cudaError_t cudaFuncSetAttribute(F*, cudaFuncAttribute attr, int value) {
  return static_cast<cudaError_t>(ember::emu::detail::func_set_attribute(attr, value));
}

EMBER_FAKE_API_END
