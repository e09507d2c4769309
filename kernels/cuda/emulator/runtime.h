/// @file kernels/cuda/emulator/runtime.h @brief Emulated CUDA runtime: errors, configuration (schedule, limits), device memory, streams, events, device queries.
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "kernels/cuda/emulator/types.h"

namespace ember::emu {

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
inline std::optional<Schedule> parse_schedule(std::string_view s) {
  if (s == "forward") return Schedule::forward();
  if (s == "reverse") return Schedule::reverse();
  if (s == "random") return Schedule::random(0);
  if (!s.starts_with("random:") || s.size() == 7) return std::nullopt;
  std::uint64_t seed = 0;
  for (char c : s.substr(7)) {
    if (c < '0' || c > '9') return std::nullopt;
    seed = seed * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return Schedule::random(seed);
}

inline constexpr std::size_t kTotalGlobalMem = std::size_t{16} << 30;
inline constexpr std::size_t kMaxDynamicShared = 228 * 1024;
inline constexpr int kMultiProcessors = 8;  // fixed, so grid sizes (and float results) do not depend on the host

namespace detail {

inline std::size_t env_size(const char* name, std::size_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const unsigned long long n = std::strtoull(v, &end, 10);
  if (*end == '\0' && n > 0) return static_cast<std::size_t>(n);
  std::fprintf(stderr, "ember emulator: ignoring %s=%s (expected a positive integer)\n", name, v);
  return fallback;
}

struct Config {
  std::mutex m;
  Schedule schedule;
  std::size_t stack_bytes = env_size("EMBER_EMU_STACK_KB", 64) * 1024;
  Config() {
    const char* s = std::getenv("EMBER_EMU_SCHEDULE");
    if (s == nullptr || *s == '\0') return;
    if (auto parsed = parse_schedule(s))
      schedule = *parsed;
    else
      std::fprintf(stderr, "ember emulator: unknown EMBER_EMU_SCHEDULE=%s, using forward\n", s);
  }
};
inline Config& config() {
  static Config c;
  return c;
}

/// Per host thread, like CUDA's: the last error and the explanation of the most recent error.
struct ErrorState {
  cudaError_t last = cudaSuccess, described = cudaSuccess;
  std::string message, composed;  // composed: storage for cudaGetErrorString's detailed text
};
inline thread_local ErrorState tls_error;

inline cudaError_t fail(cudaError_t e, std::string message = {}) {
  tls_error.last = tls_error.described = e;
  tls_error.message = std::move(message);
  return e;
}

struct Memory {
  std::mutex m;
  std::map<std::uintptr_t, std::pair<std::size_t, bool>> allocs;  // address -> (bytes, device)
  std::size_t in_use = 0, limit = SIZE_MAX;
};
inline Memory& memory() {
  static Memory mem;
  return mem;
}

inline cudaError_t allocate(void** p, std::size_t n, bool device, const char* fn) {
  if (p == nullptr) return fail(cudaErrorInvalidValue, std::string(fn) + ": null result pointer");
  *p = nullptr;
  if (n == 0) return cudaSuccess;
  Memory& mem = memory();
  std::lock_guard lock(mem.m);
  if (device && (n > mem.limit || mem.in_use > mem.limit - n))
    return fail(cudaErrorMemoryAllocation, std::string(fn) + " of " + std::to_string(n) +
                                               " bytes: " + std::to_string(mem.in_use) + " in use, limit " +
                                               std::to_string(mem.limit));
  void* q = std::aligned_alloc(256, (n + 255) / 256 * 256);
  if (q == nullptr) return fail(cudaErrorMemoryAllocation, std::string(fn) + ": host allocation failed");
  if (device) std::memset(q, 0xFF, n), mem.in_use += n;  // poison: unwritten float outputs read as NaN
  mem.allocs.emplace(reinterpret_cast<std::uintptr_t>(q), std::pair{n, device});
  *p = q;
  return cudaSuccess;
}

inline cudaError_t release(void* p, bool device, const char* fn) {
  if (p == nullptr) return cudaSuccess;
  Memory& mem = memory();
  std::lock_guard lock(mem.m);
  auto it = mem.allocs.find(reinterpret_cast<std::uintptr_t>(p));
  if (it == mem.allocs.end() || it->second.second != device)
    return fail(cudaErrorInvalidValue, std::string(fn) + ": pointer was not allocated by the matching allocator");
  if (device) mem.in_use -= it->second.first;
  mem.allocs.erase(it);
  std::free(p);
  return cudaSuccess;
}

/// True when [p, p+n) lies inside one cudaMalloc allocation.
inline bool is_device_range(const void* p, std::size_t n) {
  std::lock_guard lock(memory().m);
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  auto it = memory().allocs.upper_bound(a);
  if (it == memory().allocs.begin()) return false;
  --it;
  return it->second.second && a - it->first <= it->second.first && n <= it->second.first - (a - it->first);
}

inline cudaError_t copy(void* dst, const void* src, std::size_t n, cudaMemcpyKind kind, const char* fn) {
  if (n == 0) return cudaSuccess;
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault) return fail(cudaErrorInvalidMemcpyDirection);
  if (dst == nullptr || src == nullptr) return fail(cudaErrorInvalidValue, std::string(fn) + ": null pointer");
  const bool bad_dst = (kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice) && !is_device_range(dst, n);
  const bool bad_src = (kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice) && !is_device_range(src, n);
  if (bad_dst || bad_src)
    return fail(cudaErrorInvalidValue, std::string(fn) + ": " + (bad_dst ? "destination" : "source") + " range of " +
                                           std::to_string(n) + " bytes is not inside one cudaMalloc allocation");
  std::memmove(dst, src, n);
  return cudaSuccess;
}

inline cudaError_t set(void* dst, int value, std::size_t n, const char* fn) {
  if (n == 0) return cudaSuccess;
  if (dst == nullptr || !is_device_range(dst, n))
    return fail(cudaErrorInvalidValue, std::string(fn) + ": range is not inside one cudaMalloc allocation");
  std::memset(dst, value, n);
  return cudaSuccess;
}

template <class H>
cudaError_t create_handle(H** out, unsigned flags) {
  if (out == nullptr) return fail(cudaErrorInvalidValue);
  *out = new H{flags};
  return cudaSuccess;
}
template <class H>
cudaError_t destroy_handle(H* h) {
  if (h == nullptr) return fail(cudaErrorInvalidResourceHandle);
  delete h;
  return cudaSuccess;
}

}  // namespace detail

/// Schedule of the following launches (initially from EMBER_EMU_SCHEDULE, default forward).
inline void set_schedule(Schedule s) {
  std::lock_guard lock(detail::config().m);
  detail::config().schedule = s;
}
inline Schedule schedule() {
  std::lock_guard lock(detail::config().m);
  return detail::config().schedule;
}
/// Stack size of each emulated thread (default 64 KiB, or EMBER_EMU_STACK_KB).
inline void set_stack_size(std::size_t bytes) {
  std::lock_guard lock(detail::config().m);
  detail::config().stack_bytes = std::max<std::size_t>(bytes, 16 * 1024);
}
/// cudaMalloc fails with cudaErrorMemoryAllocation when the bytes in use would exceed `bytes` (SIZE_MAX: no limit).
inline void set_memory_limit(std::size_t bytes) {
  std::lock_guard lock(detail::memory().m);
  detail::memory().limit = bytes;
}
inline std::size_t memory_in_use() {
  std::lock_guard lock(detail::memory().m);
  return detail::memory().in_use;
}
/// Explanation of the most recent error recorded on this host thread (launch errors name block, thread, file:line).
inline std::string last_error_message() { return detail::tls_error.message; }

}  // namespace ember::emu

// ---- the CUDA runtime API subset (global namespace, as in CUDA) ----------------------------------------
struct CUstream_st {
  unsigned flags;
};
struct CUevent_st {
  unsigned flags;
  bool recorded = false;
  std::chrono::steady_clock::time_point when{};
};

inline const char* cudaGetErrorName(cudaError_t e) {
#define EMBER_EMU_NAME(name, value, text) \
  if (e == name) return #name;
  EMBER_EMU_ERRORS(EMBER_EMU_NAME)
#undef EMBER_EMU_NAME
  return "cudaErrorUnknown";
}
/// CUDA's text; for the most recent error, with the emulator's explanation appended when it has one.
inline const char* cudaGetErrorString(cudaError_t e) {
  const char* text = "unknown error";
#define EMBER_EMU_TEXT(name, value, str) \
  if (e == name) text = str;
  EMBER_EMU_ERRORS(EMBER_EMU_TEXT)
#undef EMBER_EMU_TEXT
  auto& st = ember::emu::detail::tls_error;
  if (e == cudaSuccess || st.described != e || st.message.empty()) return text;
  st.composed = std::string(text) + " (emulator: " + st.message + ")";
  return st.composed.c_str();
}
/// Returns the last error of this host thread and resets it to cudaSuccess.
inline cudaError_t cudaGetLastError() { return std::exchange(ember::emu::detail::tls_error.last, cudaSuccess); }
inline cudaError_t cudaPeekAtLastError() { return ember::emu::detail::tls_error.last; }

inline cudaError_t cudaMalloc(void** p, std::size_t n) {
  return ember::emu::detail::allocate(p, n, true, "cudaMalloc");
}
template <class T>
cudaError_t cudaMalloc(T** p, std::size_t n) {
  return cudaMalloc(reinterpret_cast<void**>(p), n);
}
inline cudaError_t cudaFree(void* p) { return ember::emu::detail::release(p, true, "cudaFree"); }
inline cudaError_t cudaMallocHost(void** p, std::size_t n) {
  return ember::emu::detail::allocate(p, n, false, "cudaMallocHost");
}
template <class T>
cudaError_t cudaMallocHost(T** p, std::size_t n) {
  return cudaMallocHost(reinterpret_cast<void**>(p), n);
}
inline cudaError_t cudaFreeHost(void* p) { return ember::emu::detail::release(p, false, "cudaFreeHost"); }
inline cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t n, cudaMemcpyKind kind) {
  return ember::emu::detail::copy(dst, src, n, kind, "cudaMemcpy");
}
inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t n, cudaMemcpyKind kind,
                                   cudaStream_t = nullptr) {
  return ember::emu::detail::copy(dst, src, n, kind, "cudaMemcpyAsync");
}
inline cudaError_t cudaMemset(void* dst, int value, std::size_t n) {
  return ember::emu::detail::set(dst, value, n, "cudaMemset");
}
inline cudaError_t cudaMemsetAsync(void* dst, int value, std::size_t n, cudaStream_t = nullptr) {
  return ember::emu::detail::set(dst, value, n, "cudaMemsetAsync");
}
/// Total is a fixed 16 GiB; free is that (or the memory limit) minus the bytes cudaMalloc'd.
inline cudaError_t cudaMemGetInfo(std::size_t* free_bytes, std::size_t* total_bytes) {
  if (free_bytes == nullptr || total_bytes == nullptr) return ember::emu::detail::fail(cudaErrorInvalidValue);
  auto& mem = ember::emu::detail::memory();
  std::lock_guard lock(mem.m);
  const std::size_t cap = std::min(ember::emu::kTotalGlobalMem, mem.limit);
  *total_bytes = ember::emu::kTotalGlobalMem;
  *free_bytes = cap > mem.in_use ? cap - mem.in_use : 0;
  return cudaSuccess;
}

// Streams and events: all work is synchronous in the emulator, so they only have to exist.
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags) {
  return ember::emu::detail::create_handle(s, flags);
}
inline cudaError_t cudaStreamCreate(cudaStream_t* s) { return cudaStreamCreateWithFlags(s, cudaStreamDefault); }
inline cudaError_t cudaStreamDestroy(cudaStream_t s) { return ember::emu::detail::destroy_handle(s); }
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned = 0) { return cudaSuccess; }
inline cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned flags) {
  return ember::emu::detail::create_handle(e, flags);
}
inline cudaError_t cudaEventCreate(cudaEvent_t* e) { return cudaEventCreateWithFlags(e, cudaEventDefault); }
inline cudaError_t cudaEventDestroy(cudaEvent_t e) { return ember::emu::detail::destroy_handle(e); }
inline cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
inline cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t = nullptr) {
  if (e == nullptr) return ember::emu::detail::fail(cudaErrorInvalidResourceHandle);
  e->recorded = true;
  e->when = std::chrono::steady_clock::now();
  return cudaSuccess;
}
inline cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (ms == nullptr || start == nullptr || end == nullptr) return ember::emu::detail::fail(cudaErrorInvalidValue);
  if (!start->recorded || !end->recorded || ((start->flags | end->flags) & cudaEventDisableTiming))
    return ember::emu::detail::fail(cudaErrorInvalidResourceHandle);
  *ms = std::chrono::duration<float, std::milli>(end->when - start->when).count();
  return cudaSuccess;
}

// One emulated device, shaped like an H100 (compute capability 9.0).
inline cudaError_t cudaGetDeviceCount(int* n) {
  return n ? (*n = 1, cudaSuccess) : ember::emu::detail::fail(cudaErrorInvalidValue);
}
inline cudaError_t cudaGetDevice(int* d) {
  return d ? (*d = 0, cudaSuccess) : ember::emu::detail::fail(cudaErrorInvalidValue);
}
inline cudaError_t cudaSetDevice(int d) {
  return d == 0 ? cudaSuccess : ember::emu::detail::fail(cudaErrorInvalidDevice);
}
inline cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device) {
  if (p == nullptr) return ember::emu::detail::fail(cudaErrorInvalidValue);
  if (device != 0) return ember::emu::detail::fail(cudaErrorInvalidDevice);
  *p = cudaDeviceProp{};
  std::snprintf(p->name, sizeof p->name, "%s", "Ember kernel emulator");
  p->totalGlobalMem = ember::emu::kTotalGlobalMem;
  p->sharedMemPerBlock = 48 * 1024;
  p->sharedMemPerBlockOptin = p->sharedMemPerMultiprocessor = ember::emu::kMaxDynamicShared;
  p->regsPerBlock = 65536;
  p->warpSize = 32;
  p->maxThreadsPerBlock = p->maxThreadsDim[0] = p->maxThreadsDim[1] = 1024;
  p->maxThreadsDim[2] = 64;
  p->maxGridSize[0] = 2147483647;
  p->maxGridSize[1] = p->maxGridSize[2] = 65535;
  p->maxThreadsPerMultiProcessor = 2048;
  p->multiProcessorCount = ember::emu::kMultiProcessors;
  p->l2CacheSize = 50 << 20;
  p->major = 9;
  p->clockRate = p->memoryClockRate = 1000000;
  p->memoryBusWidth = 5120;
  p->concurrentKernels = 1;
  return cudaSuccess;
}
/// Accepted (the emulator allows up to 228 KiB of dynamic shared memory to every kernel).
template <class F>
cudaError_t cudaFuncSetAttribute(F*, cudaFuncAttribute attr, int value) {
  if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize &&
      (value < 0 || value > static_cast<int>(ember::emu::kMaxDynamicShared)))
    return ember::emu::detail::fail(cudaErrorInvalidValue,
                                    "cudaFuncSetAttribute: more than 228 KiB of dynamic shared memory");
  return cudaSuccess;
}
