/// @file kernels/cuda/emulator/runtime.cpp @brief The emulated CUDA runtime: configuration, per-thread errors and counters, devices with sticky errors, device and pinned memory, lazy or eager streams with events, copies, kernel launches, and the device-work API of the library fakes.
//
// Every queued operation (kernel, copy, memset, event record, stream wait, library call) is an Op on
// its stream's queue, numbered by a process-wide sequence. In lazy mode nothing runs until a host call
// must wait (advance() with blocking = true) or polls (blocking = false); advance(s, seq) runs only
// what that needs: s's ops up to seq, and, for a wait op, the waited-for stream up to its record.
// When a whole device must drain, the stream whose next op was queued LAST goes first, so a consumer
// that forgot to wait for its producer runs before it. One mutex guards all state; ops run under it.
#include "kernels/cuda/emulator/runtime.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include "kernels/cuda/emulator/device_work.h"
#include "kernels/cuda/emulator/internal.h"
#include "kernels/cuda/emulator/launch.h"
#include "kernels/cuda/emulator/scheduler.h"

namespace ember::emu::detail {
struct Op {
  enum class Kind { work, wait, record };
  Kind kind = Kind::work;
  std::uint64_t seq = 0;
  std::string name;
  std::function<WorkStatus()> work;  // Kind::work
  std::vector<DeviceSpan> spans;     // Kind::work: must be memory of the stream's device
  CUstream_st* target = nullptr;     // Kind::wait: runs once target->done_seq >= target_seq
  std::uint64_t target_seq = 0;
  CUevent_st* event = nullptr;  // Kind::record
};

}  // namespace ember::emu::detail

struct CUstream_st {
  int device = 0;
  unsigned flags = 0;
  bool legacy = false, destroyed = false;
  std::uint64_t id = 0;        ///< creation number (0: a legacy default stream)
  std::uint64_t last_seq = 0;  ///< seq of the most recently queued op
  std::uint64_t done_seq = 0;  ///< every op with seq <= done_seq has run (ops of a stream run in order)
  std::uint64_t queried_seq = 0;
  std::deque<ember::emu::detail::Op> queue;
  bool blocking() const { return !legacy && (flags & cudaStreamNonBlocking) == 0; }
  bool idle() const { return queue.empty(); }
};

struct CUevent_st {
  int device = 0;
  unsigned flags = 0;
  bool destroyed = false;
  CUstream_st* record_stream = nullptr;  ///< where the most recent cudaEventRecord was queued
  std::uint64_t record_seq = 0;
  std::uint64_t queried_seq = 0;  ///< the record the first cudaEventQuery answered "not ready" for
  std::chrono::steady_clock::time_point when{};
  bool recorded() const { return record_stream != nullptr; }
  bool complete() const { return record_stream == nullptr || record_stream->done_seq >= record_seq; }
};

namespace ember::emu::detail {

// ---- configuration -----------------------------------------------------------------------------------

std::size_t env_size(const char* name, std::size_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const unsigned long long n = std::strtoull(v, &end, 10);
  if (*end == '\0' && n > 0) return static_cast<std::size_t>(n);
  std::fprintf(stderr, "ember emulator: ignoring %s=%s (expected a positive integer)\n", name, v);
  return fallback;
}

namespace {

template <class T>
T from_env(const char* name, std::optional<T> (*parse)(std::string_view), T fallback) {
  const char* s = std::getenv(name);
  if (s == nullptr || *s == '\0') return fallback;
  if (auto parsed = parse(s)) return *parsed;
  std::fprintf(stderr, "ember emulator: ignoring unknown %s=%s\n", name, s);
  return fallback;
}

struct Config {
  std::mutex m;
  Schedule schedule = from_env("EMBER_EMU_SCHEDULE", parse_schedule, Schedule::forward());
  StreamMode stream_mode = from_env("EMBER_EMU_STREAMS", parse_stream_mode, StreamMode::lazy);
  std::size_t stack_bytes = env_size("EMBER_EMU_STACK_KB", 64) * 1024;
};
Config& config() {
  static Config c;
  return c;
}

// ---- per host thread: errors, counters, the operation being run ---------------------------------------

struct ErrorState {
  cudaError_t last = cudaSuccess, described = cudaSuccess;
  std::string message, composed;  // composed: storage for cudaGetErrorString's detailed text
};
thread_local ErrorState tls_error;
thread_local Counters tls_counters;
thread_local int tls_device = 0;
thread_local int tls_exec_device = -1;  // device of the op this thread is running, -1 outside ops

}  // namespace

cudaError_t fail(cudaError_t e, std::string message) {
  tls_error.last = tls_error.described = e;
  tls_error.message = std::move(message);
  return e;
}

// ---- state -------------------------------------------------------------------------------------------

namespace {

struct Device {
  int id = 0;
  CUstream_st legacy;
  std::vector<CUstream_st*> streams;  // created on this device (destroyed ones too, until idle)
  cudaError_t sticky = cudaSuccess;
  std::string sticky_message;
  std::size_t in_use = 0;
};

struct Allocation {
  std::size_t bytes = 0;
  int device = -1;  // -1: pinned host memory
};

struct State {
  std::recursive_mutex mu;  // recursive: the device-work queries may be called from inside an op
  std::vector<std::unique_ptr<Device>> devices;
  std::map<std::uintptr_t, Allocation> allocs;
  std::map<CUstream_st*, std::unique_ptr<CUstream_st>> streams;
  std::map<CUevent_st*, std::unique_ptr<CUevent_st>> events;
  std::size_t limit = SIZE_MAX;
  std::uint64_t next_seq = 0, next_stream_id = 0;
  bool tracing = false;
  std::vector<TraceEntry> trace;
  State() {
    const int n = static_cast<int>(env_size("EMBER_EMU_DEVICES", 1));
    for (int d = 0; d < n; ++d) {
      devices.push_back(std::make_unique<Device>());
      devices.back()->id = d;
      devices.back()->legacy.device = d;
      devices.back()->legacy.legacy = true;
    }
  }
};
State& state() {
  static State* s = new State();  // never destroyed: static destructors of other libraries still call in
  return *s;
}
using Lock = std::unique_lock<std::recursive_mutex>;

Device& device(int d) { return *state().devices[static_cast<std::size_t>(d)]; }
Device& current() { return device(tls_device); }

void count_sync(const char* fn) {
  ++tls_counters.host_syncs;
  ++tls_counters.syncs_by_call[fn];
}

/// The device's sticky error, recorded again as this thread's last error (cudaSuccess when none).
cudaError_t sticky(const Device& d) {
  return d.sticky == cudaSuccess ? cudaSuccess : fail(d.sticky, d.sticky_message);
}

/// Calls that would re-enter the runtime from inside a queued operation are refused.
bool refuse_in_op(const char* fn) {
  if (tls_exec_device < 0 && !in_kernel()) return false;
  fail(cudaErrorNotPermitted, std::string(fn) + " called from inside a kernel or a queued device operation");
  return true;
}

/// The allocation containing [p, p + n), or nullptr.
const Allocation* find_allocation(const void* p, std::size_t n, std::uintptr_t* base = nullptr) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  auto& allocs = state().allocs;
  auto it = allocs.upper_bound(a);
  if (it == allocs.begin()) return nullptr;
  --it;
  if (a - it->first > it->second.bytes || n > it->second.bytes - (a - it->first)) return nullptr;
  if (base) *base = it->first;
  return &it->second;
}
int device_memory_of(const void* p, std::size_t n) {
  const Allocation* a = find_allocation(p, n);
  return a ? a->device : -1;
}
bool is_pinned(const void* p, std::size_t n) {
  const Allocation* a = find_allocation(p, n);
  return a != nullptr && a->device < 0;
}

// ---- queues ------------------------------------------------------------------------------------------

/// Every op of the device is dropped (after a fault, or cudaDeviceReset): waits on them are satisfied.
void discard_queues(Device& d) {
  auto drop = [](CUstream_st& s) {
    s.queue.clear();
    s.done_seq = s.last_seq;
  };
  drop(d.legacy);
  for (CUstream_st* s : d.streams) drop(*s);
}

/// Records a fault of device `dev` (sticky) and of this host thread.
void record_fault(int dev, const std::string& message, cudaError_t error) {
  Device& d = device(dev);
  if (d.sticky == cudaSuccess) d.sticky = error, d.sticky_message = message;
  fail(error, message);
}

std::string describe_span(const char* op, const DeviceSpan& s, int stream_device) {
  const int owner = device_memory_of(s.p, s.bytes);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%p", s.p);
  return std::string(op) + ": operand " + s.what + " [" + buf + ", +" + std::to_string(s.bytes) + " bytes) is " +
         (owner >= 0 ? "memory of device " + std::to_string(owner) : std::string("not device memory")) +
         " but the operation runs on device " + std::to_string(stream_device) + " (illegal address)";
}

/// Runs one op of `s` (lock held). Returns pending when it must be retried later.
WorkStatus run_op(CUstream_st& s, Op& op) {
  switch (op.kind) {
    case Op::Kind::wait:
      return op.target->done_seq >= op.target_seq ? WorkStatus::done : WorkStatus::pending;
    case Op::Kind::record:
      op.event->when = std::chrono::steady_clock::now();
      return WorkStatus::done;
    case Op::Kind::work:
      break;
  }
  for (const DeviceSpan& span : op.spans)
    if (span.bytes != 0 && device_memory_of(span.p, span.bytes) != s.device) {
      record_fault(s.device, describe_span(op.name.c_str(), span, s.device), cudaErrorIllegalAddress);
      return WorkStatus::done;
    }
  tls_exec_device = s.device;
  WorkStatus status = WorkStatus::done;
  try {
    status = op.work();
  } catch (const std::exception& e) {
    record_fault(s.device, op.name + " threw: " + e.what(), cudaErrorLaunchFailure);
  }
  tls_exec_device = -1;
  return status;
}

void pause(Lock& lk) {
  lk.unlock();
  std::this_thread::sleep_for(std::chrono::microseconds(50));
  lk.lock();
}

/// Runs the ops of s with seq <= upto, and what they wait for. Returns true when they have all run;
/// false when one is pending and !blocking (it stays at the head of its stream).
bool advance(Lock& lk, CUstream_st* s, std::uint64_t upto, bool blocking) {
  for (;;) {
    if (s->queue.empty() || s->queue.front().seq > upto) return true;
    Op& op = s->queue.front();
    if (op.kind == Op::Kind::wait && op.target->done_seq < op.target_seq) {
      if (!advance(lk, op.target, op.target_seq, blocking)) return false;
      continue;
    }
    if (run_op(*s, op) == WorkStatus::pending) {
      if (!blocking) return false;
      pause(lk);
      continue;
    }
    s->done_seq = s->queue.front().seq;
    s->queue.pop_front();
    Device& d = device(s->device);
    if (d.sticky != cudaSuccess) discard_queues(d);
  }
}

/// Runs all queued work of device d, most recently queued stream head first.
bool drain(Lock& lk, Device& d, bool blocking) {
  for (;;) {
    CUstream_st* pick = d.legacy.idle() ? nullptr : &d.legacy;
    for (CUstream_st* s : d.streams)
      if (!s->idle() && (pick == nullptr || s->queue.front().seq > pick->queue.front().seq)) pick = s;
    if (pick == nullptr) return true;
    if (!advance(lk, pick, pick->queue.front().seq, blocking)) return false;
  }
}
void drain_all(Lock& lk) {
  for (auto& d : state().devices) drain(lk, *d, true);
}

void push(CUstream_st* s, Op op) {
  State& st = state();
  op.seq = ++st.next_seq;
  s->last_seq = op.seq;
  if (st.tracing && !op.name.empty()) st.trace.push_back({op.seq, s->device, s->id, op.name});
  s->queue.push_back(std::move(op));
}

Op wait_op(CUstream_st* target, std::uint64_t seq) {
  Op w;
  w.kind = Op::Kind::wait;
  w.target = target, w.target_seq = seq;
  return w;
}

/// Queues op on s with the legacy default stream's implicit ordering; eager mode runs it at once.
void enqueue_op(Lock& lk, CUstream_st* s, Op op) {
  Device& d = device(s->device);
  if (s->legacy) {  // waits for the earlier work of every blocking stream of the device
    for (CUstream_st* b : d.streams)
      if (b->blocking() && b->done_seq < b->last_seq) push(s, wait_op(b, b->last_seq));
  } else if (s->blocking() && d.legacy.done_seq < d.legacy.last_seq) {
    push(s, wait_op(&d.legacy, d.legacy.last_seq));
  }
  push(s, std::move(op));
  if (config().stream_mode == StreamMode::eager) advance(lk, s, s->last_seq, false);
}

Op work_op(std::string name, std::function<WorkStatus()> work, std::vector<DeviceSpan> spans = {}) {
  Op op;
  op.name = std::move(name);
  op.work = std::move(work);
  op.spans = std::move(spans);
  return op;
}

/// The stream a handle names (nullptr, cudaStreamLegacy, cudaStreamPerThread: the current device's
/// legacy default stream), or nullptr after recording cudaErrorInvalidResourceHandle.
CUstream_st* resolve(cudaStream_t s, const char* fn) {
  if (s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread) return &current().legacy;
  auto it = state().streams.find(s);
  if (it == state().streams.end() || it->second->destroyed) {
    fail(cudaErrorInvalidResourceHandle, std::string(fn) + ": not a live stream");
    return nullptr;
  }
  return s;
}
CUevent_st* resolve(cudaEvent_t e, const char* fn) {
  auto it = state().events.find(e);
  if (e == nullptr || it == state().events.end() || it->second->destroyed) {
    fail(cudaErrorInvalidResourceHandle, std::string(fn) + ": not a live event");
    return nullptr;
  }
  return e;
}

// ---- memory ------------------------------------------------------------------------------------------

cudaError_t allocate(void** p, std::size_t n, int dev, const char* fn) {
  if (p == nullptr) return fail(cudaErrorInvalidValue, std::string(fn) + ": null result pointer");
  *p = nullptr;
  if (n == 0) return cudaSuccess;
  State& st = state();
  if (dev >= 0) {
    Device& d = device(dev);
    if (n > st.limit || d.in_use > st.limit - n)
      return fail(cudaErrorMemoryAllocation, std::string(fn) + " of " + std::to_string(n) + " bytes on device " +
                                                 std::to_string(dev) + ": " + std::to_string(d.in_use) +
                                                 " in use, limit " + std::to_string(st.limit));
  }
  void* q = std::aligned_alloc(256, (n + 255) / 256 * 256);
  if (q == nullptr) return fail(cudaErrorMemoryAllocation, std::string(fn) + ": host allocation failed");
  std::memset(q, 0xFF, n);  // poison: unwritten float outputs read as NaN
  if (dev >= 0) device(dev).in_use += n;
  st.allocs.emplace(reinterpret_cast<std::uintptr_t>(q), Allocation{n, dev});
  *p = q;
  return cudaSuccess;
}

cudaError_t release(Lock& lk, void* p, bool dev, const char* fn) {
  if (p == nullptr) return cudaSuccess;
  auto it = state().allocs.find(reinterpret_cast<std::uintptr_t>(p));
  if (it == state().allocs.end() || (it->second.device >= 0) != dev)
    return fail(cudaErrorInvalidValue, std::string(fn) + ": pointer was not allocated by the matching allocator");
  count_sync(fn);  // implicitly synchronizing
  if (dev)
    drain(lk, device(it->second.device), true);
  else
    drain_all(lk);
  it = state().allocs.find(reinterpret_cast<std::uintptr_t>(p));  // the drain released the lock at times
  if (it == state().allocs.end()) return fail(cudaErrorInvalidValue, std::string(fn) + ": pointer freed twice");
  if (dev) device(it->second.device).in_use -= it->second.bytes;
  state().allocs.erase(it);
  std::free(p);
  return dev ? sticky(current()) : cudaSuccess;
}

enum class Side { device, pinned, pageable };
Side side_of(const void* p, std::size_t n) {
  const Allocation* a = find_allocation(p, n);
  return a == nullptr ? Side::pageable : (a->device >= 0 ? Side::device : Side::pinned);
}

/// cudaMemcpyDefault's direction, from where the pointers are (unified addressing).
cudaMemcpyKind infer_kind(void* dst, const void* src, std::size_t n) {
  const bool d = side_of(dst, n) == Side::device, s = side_of(src, n) == Side::device;
  return d ? (s ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
           : (s ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
}

/// Validates a copy's device ranges; returns the error (already recorded) or cudaSuccess.
cudaError_t check_copy(void* dst, const void* src, std::size_t n, cudaMemcpyKind kind, const char* fn) {
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault) return fail(cudaErrorInvalidMemcpyDirection);
  if (dst == nullptr || src == nullptr) return fail(cudaErrorInvalidValue, std::string(fn) + ": null pointer");
  const bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  const bool bad_dst = dst_dev && device_memory_of(dst, n) < 0, bad_src = src_dev && device_memory_of(src, n) < 0;
  if (bad_dst || bad_src)
    return fail(cudaErrorInvalidValue, std::string(fn) + ": " + (bad_dst ? "destination" : "source") + " range of " +
                                           std::to_string(n) + " bytes is not inside one cudaMalloc allocation");
  return cudaSuccess;
}

/// Queues a copy on s and, when the API blocks the host, runs s up to it.
cudaError_t copy(Lock& lk, void* dst, const void* src, std::size_t n, cudaMemcpyKind kind, CUstream_st* s, bool async,
                 const char* fn) {
  if (n == 0) return cudaSuccess;
  if (kind == cudaMemcpyDefault) kind = infer_kind(dst, src, n);
  if (cudaError_t e = check_copy(dst, src, n, kind, fn); e != cudaSuccess) return e;
  if (kind == cudaMemcpyHostToHost) return std::memmove(dst, src, n), cudaSuccess;
  if (cudaError_t e = sticky(device(s->device)); e != cudaSuccess) return e;
  bool blocks = !async;
  std::function<WorkStatus()> work;
  if (kind == cudaMemcpyHostToDevice) {
    tls_counters.bytes_host_to_device += n;
    if (is_pinned(src, n)) {  // read when the copy runs: the host must not touch the buffer until then
      work = [dst, src, n] { return std::memmove(dst, src, n), WorkStatus::done; };
    } else {  // pageable: staged at the call, so the caller may reuse its buffer at once
      auto staged = std::make_shared<std::vector<unsigned char>>(static_cast<const unsigned char*>(src),
                                                                 static_cast<const unsigned char*>(src) + n);
      work = [dst, staged] { return std::memcpy(dst, staged->data(), staged->size()), WorkStatus::done; };
    }
  } else {
    (kind == cudaMemcpyDeviceToHost ? tls_counters.bytes_device_to_host : tls_counters.bytes_device_to_device) += n;
    if (kind == cudaMemcpyDeviceToHost && !is_pinned(dst, n)) blocks = true;  // into pageable memory: returns when done
    if (kind == cudaMemcpyDeviceToDevice && !async) blocks = false;           // no host synchronization
    work = [dst, src, n] { return std::memmove(dst, src, n), WorkStatus::done; };
  }
  enqueue_op(lk, s, work_op(fn, std::move(work)));
  if (!blocks) return cudaSuccess;
  count_sync(fn);
  advance(lk, s, s->last_seq, true);
  return sticky(device(s->device));
}

cudaError_t memset_on(Lock& lk, void* dst, int value, std::size_t n, CUstream_st* s, const char* fn) {
  if (n == 0) return cudaSuccess;
  if (dst == nullptr || device_memory_of(dst, n) < 0)
    return fail(cudaErrorInvalidValue, std::string(fn) + ": range is not inside one cudaMalloc allocation");
  if (cudaError_t e = sticky(device(s->device)); e != cudaSuccess) return e;
  enqueue_op(lk, s, work_op(fn, [dst, value, n] { return std::memset(dst, value, n), WorkStatus::done; }));
  return cudaSuccess;
}

// ---- kernels -----------------------------------------------------------------------------------------

struct ForeignScan {
  int device;
  std::string found;
};
void check_address(const void* p, int index, void* ctx) {
  auto& scan = *static_cast<ForeignScan*>(ctx);
  const int owner = device_memory_of(p, 1);
  if (owner < 0 || owner == scan.device || !scan.found.empty()) return;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%p", p);
  scan.found = "kernel argument " + std::to_string(index) + " holds address " + buf + " of device " +
               std::to_string(owner) + "'s memory, but the kernel runs on device " + std::to_string(scan.device) +
               " (illegal address: peer access is not emulated)";
}

}  // namespace

void launch_kernel(dim3 grid, dim3 block, std::size_t shmem, cudaStream_t stream,
                   std::shared_ptr<const KernelCall> call) {
  if (in_kernel()) return (void)fail(cudaErrorNotSupported, "launch from inside a kernel (dynamic parallelism) is not emulated");
  Lock lk(state().mu);
  if (refuse_in_op("a kernel launch")) return;
  Device& dev = current();
  CUstream_st* s = resolve(stream, "kernel launch");
  if (s == nullptr || sticky(dev) != cudaSuccess) return;
  if (s->device != dev.id)
    return (void)fail(cudaErrorInvalidResourceHandle, "kernel launch on device " + std::to_string(dev.id) +
                                                          " into a stream of device " + std::to_string(s->device));
  if (std::string bad = launch_config_error(grid, block, shmem); !bad.empty())
    return (void)fail(cudaErrorInvalidConfiguration, std::move(bad));
  ++tls_counters.kernel_launches;
  const int d = dev.id;
  enqueue_op(lk, s, work_op("kernel", [grid, block, shmem, call, d] {
               ForeignScan scan{d, {}};
               call->for_each_address(check_address, &scan);
               if (!scan.found.empty()) return record_fault(d, scan.found, cudaErrorIllegalAddress), WorkStatus::done;
               const std::string error = run_grid(
                   grid, block, shmem, [](const void* c) { static_cast<const KernelCall*>(c)->invoke(); }, call.get());
               if (!error.empty()) record_fault(d, error, cudaErrorLaunchFailure);
               return WorkStatus::done;
             }));
}

cudaError_t func_set_attribute(int attr, int value) {
  if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize && (value < 0 || value > static_cast<int>(kMaxDynamicShared)))
    return fail(cudaErrorInvalidValue, "cudaFuncSetAttribute: more than 228 KiB of dynamic shared memory");
  return cudaSuccess;
}

}  // namespace ember::emu::detail

// ---- ember::emu: configuration, counters, trace, device work ------------------------------------------
namespace ember::emu {
using detail::Lock;
using detail::state;

std::optional<Schedule> parse_schedule(std::string_view s) {
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
std::optional<StreamMode> parse_stream_mode(std::string_view s) {
  if (s == "lazy") return StreamMode::lazy;
  if (s == "eager") return StreamMode::eager;
  return std::nullopt;
}

void set_schedule(Schedule s) {
  std::lock_guard lock(detail::config().m);
  detail::config().schedule = s;
}
Schedule schedule() {
  std::lock_guard lock(detail::config().m);
  return detail::config().schedule;
}
void set_stack_size(std::size_t bytes) {
  std::lock_guard lock(detail::config().m);
  detail::config().stack_bytes = std::max<std::size_t>(bytes, 16 * 1024);
}
std::size_t stack_size() {
  std::lock_guard lock(detail::config().m);
  return detail::config().stack_bytes;
}
void set_stream_mode(StreamMode m) {
  std::lock_guard lock(detail::config().m);
  detail::config().stream_mode = m;
}
StreamMode stream_mode() {
  std::lock_guard lock(detail::config().m);
  return detail::config().stream_mode;
}

int device_count() {
  Lock lk(state().mu);
  return static_cast<int>(state().devices.size());
}
void set_memory_limit(std::size_t bytes) {
  Lock lk(state().mu);
  state().limit = bytes;
}
std::size_t memory_in_use() {
  Lock lk(state().mu);
  return detail::current().in_use;
}
std::string last_error_message() { return detail::tls_error.message; }

Counters counters() { return detail::tls_counters; }
void reset_counters() { detail::tls_counters = Counters{}; }

void set_trace(bool on) {
  Lock lk(state().mu);
  state().tracing = on;
  state().trace.clear();
}
std::vector<TraceEntry> trace() {
  Lock lk(state().mu);
  return state().trace;
}
std::uint64_t stream_id(cudaStream_t s) {
  Lock lk(state().mu);
  CUstream_st* r = detail::resolve(s, "stream_id");
  return r ? r->id : 0;
}

cudaError_t enqueue(cudaStream_t stream, const char* name, std::vector<DeviceSpan> spans,
                    std::function<WorkStatus()> work) {
  Lock lk(state().mu);
  if (detail::refuse_in_op(name)) return cudaErrorNotPermitted;
  CUstream_st* s = detail::resolve(stream, name);
  if (s == nullptr) return cudaErrorInvalidResourceHandle;
  if (cudaError_t e = detail::sticky(detail::device(s->device)); e != cudaSuccess) return e;
  count_library_call(name);
  detail::enqueue_op(lk, s, detail::work_op(name, std::move(work), std::move(spans)));
  return cudaSuccess;
}

void device_fault(std::string message, cudaError_t error) {
  if (detail::tls_exec_device < 0) return (void)detail::fail(error, std::move(message));
  detail::record_fault(detail::tls_exec_device, message, error);
}
int current_device() { return detail::tls_device; }
int stream_device(cudaStream_t stream) {
  Lock lk(state().mu);
  if (stream == nullptr || stream == cudaStreamLegacy || stream == cudaStreamPerThread) return detail::tls_device;
  auto it = state().streams.find(stream);
  return it == state().streams.end() || it->second->destroyed ? -1 : it->second->device;
}
int device_of(const void* p, std::size_t bytes) {
  Lock lk(state().mu);
  return detail::device_memory_of(p, bytes);
}
void count_library_call(const char* name) { ++detail::tls_counters.library_calls[name]; }

}  // namespace ember::emu

// ---- the CUDA runtime API --------------------------------------------------------------------------------
using ember::emu::detail::fail;
using ember::emu::detail::Lock;
using ember::emu::detail::state;
namespace emud = ember::emu::detail;

const char* cudaGetErrorName(cudaError_t e) {
#define EMBER_EMU_NAME(name, value, text) \
  if (e == name) return #name;
  EMBER_EMU_ERRORS(EMBER_EMU_NAME)
#undef EMBER_EMU_NAME
  return "cudaErrorUnknown";
}
const char* cudaGetErrorString(cudaError_t e) {
  const char* text = "unknown error";
#define EMBER_EMU_TEXT(name, value, str) \
  if (e == name) text = str;
  EMBER_EMU_ERRORS(EMBER_EMU_TEXT)
#undef EMBER_EMU_TEXT
  auto& st = emud::tls_error;
  if (e == cudaSuccess || st.described != e || st.message.empty()) return text;
  st.composed = std::string(text) + " (emulator: " + st.message + ")";
  return st.composed.c_str();
}
cudaError_t cudaGetLastError() { return std::exchange(emud::tls_error.last, cudaSuccess); }
cudaError_t cudaPeekAtLastError() { return emud::tls_error.last; }

// ---- devices ----
cudaError_t cudaGetDeviceCount(int* n) {
  if (n == nullptr) return fail(cudaErrorInvalidValue);
  *n = ember::emu::device_count();
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* d) {
  if (d == nullptr) return fail(cudaErrorInvalidValue);
  *d = emud::tls_device;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) {
  if (d < 0 || d >= ember::emu::device_count())
    return fail(cudaErrorInvalidDevice, "cudaSetDevice(" + std::to_string(d) + "): " +
                                            std::to_string(ember::emu::device_count()) +
                                            " emulated devices (EMBER_EMU_DEVICES)");
  emud::tls_device = d;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device) {
  if (p == nullptr) return fail(cudaErrorInvalidValue);
  if (device < 0 || device >= ember::emu::device_count()) return fail(cudaErrorInvalidDevice);
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
  p->pciBusID = device + 1;
  p->unifiedAddressing = 1;
  p->asyncEngineCount = 2;
  return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (value == nullptr) return fail(cudaErrorInvalidValue);
  cudaDeviceProp p;
  if (cudaError_t e = cudaGetDeviceProperties(&p, device); e != cudaSuccess) return e;
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = p.maxThreadsPerBlock; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = static_cast<int>(p.sharedMemPerBlock); break;
    case cudaDevAttrWarpSize: *value = p.warpSize; break;
    case cudaDevAttrMultiProcessorCount: *value = p.multiProcessorCount; break;
    case cudaDevAttrL2CacheSize: *value = p.l2CacheSize; break;
    case cudaDevAttrComputeCapabilityMajor: *value = p.major; break;
    case cudaDevAttrComputeCapabilityMinor: *value = p.minor; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = static_cast<int>(p.sharedMemPerBlockOptin); break;
    default: return fail(cudaErrorInvalidValue, "cudaDeviceGetAttribute: attribute not emulated");
  }
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() {
  Lock lk(state().mu);
  if (emud::refuse_in_op("cudaDeviceSynchronize")) return cudaErrorNotPermitted;
  emud::count_sync("cudaDeviceSynchronize");
  emud::drain(lk, emud::current(), true);
  return emud::sticky(emud::current());
}
cudaError_t cudaDeviceReset() {
  Lock lk(state().mu);
  if (emud::refuse_in_op("cudaDeviceReset")) return cudaErrorNotPermitted;
  emud::Device& d = emud::current();
  emud::discard_queues(d);
  d.sticky = cudaSuccess;
  d.sticky_message.clear();
  return cudaSuccess;
}

// ---- memory ----
cudaError_t cudaMalloc(void** p, std::size_t n) {
  Lock lk(state().mu);
  if (emud::refuse_in_op("cudaMalloc")) return cudaErrorNotPermitted;
  if (cudaError_t e = emud::sticky(emud::current()); e != cudaSuccess) return e;
  return emud::allocate(p, n, emud::tls_device, "cudaMalloc");
}
cudaError_t cudaFree(void* p) {
  Lock lk(state().mu);
  if (emud::refuse_in_op("cudaFree")) return cudaErrorNotPermitted;
  return emud::release(lk, p, true, "cudaFree");
}
cudaError_t cudaMallocHost(void** p, std::size_t n) { return cudaHostAlloc(p, n, cudaHostAllocDefault); }
cudaError_t cudaHostAlloc(void** p, std::size_t n, unsigned flags) {
  Lock lk(state().mu);
  if (emud::refuse_in_op("cudaHostAlloc")) return cudaErrorNotPermitted;
  if (flags > (cudaHostAllocPortable | cudaHostAllocMapped | cudaHostAllocWriteCombined))
    return fail(cudaErrorInvalidValue, "cudaHostAlloc: unknown flags");
  return emud::allocate(p, n, -1, "cudaHostAlloc");
}
cudaError_t cudaHostGetDevicePointer(void** device, void* host, unsigned flags) {
  Lock lk(state().mu);
  if (device == nullptr || flags != 0) return fail(cudaErrorInvalidValue, "cudaHostGetDevicePointer: flags must be 0");
  const emud::Allocation* a = emud::find_allocation(host, 1);
  if (a == nullptr || a->device != -1)
    return fail(cudaErrorInvalidValue, "cudaHostGetDevicePointer: not page-locked memory from cudaHostAlloc");
  *device = host;
  return cudaSuccess;
}
cudaError_t cudaFreeHost(void* p) {
  Lock lk(state().mu);
  if (emud::refuse_in_op("cudaFreeHost")) return cudaErrorNotPermitted;
  return emud::release(lk, p, false, "cudaFreeHost");
}
cudaError_t cudaMemGetInfo(std::size_t* free_bytes, std::size_t* total_bytes) {
  if (free_bytes == nullptr || total_bytes == nullptr) return fail(cudaErrorInvalidValue);
  Lock lk(state().mu);
  const std::size_t cap = std::min(ember::emu::kTotalGlobalMem, state().limit), used = emud::current().in_use;
  *total_bytes = ember::emu::kTotalGlobalMem;
  *free_bytes = cap > used ? cap - used : 0;
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t n, cudaMemcpyKind kind) {
  Lock lk(state().mu);
  if (emud::refuse_in_op("cudaMemcpy")) return cudaErrorNotPermitted;
  return emud::copy(lk, dst, src, n, kind, &emud::current().legacy, false, "cudaMemcpy");
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t n, cudaMemcpyKind kind, cudaStream_t stream) {
  Lock lk(state().mu);
  if (emud::refuse_in_op("cudaMemcpyAsync")) return cudaErrorNotPermitted;
  CUstream_st* s = emud::resolve(stream, "cudaMemcpyAsync");
  return s ? emud::copy(lk, dst, src, n, kind, s, true, "cudaMemcpyAsync") : cudaErrorInvalidResourceHandle;
}
cudaError_t cudaMemset(void* dst, int value, std::size_t n) {
  Lock lk(state().mu);
  if (emud::refuse_in_op("cudaMemset")) return cudaErrorNotPermitted;
  return emud::memset_on(lk, dst, value, n, &emud::current().legacy, "cudaMemset");
}
cudaError_t cudaMemsetAsync(void* dst, int value, std::size_t n, cudaStream_t stream) {
  Lock lk(state().mu);
  if (emud::refuse_in_op("cudaMemsetAsync")) return cudaErrorNotPermitted;
  CUstream_st* s = emud::resolve(stream, "cudaMemsetAsync");
  return s ? emud::memset_on(lk, dst, value, n, s, "cudaMemsetAsync") : cudaErrorInvalidResourceHandle;
}

// ---- streams ----
cudaError_t cudaStreamCreate(cudaStream_t* s) { return cudaStreamCreateWithFlags(s, cudaStreamDefault); }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags) {
  if (s == nullptr) return fail(cudaErrorInvalidValue, "cudaStreamCreateWithFlags: null result pointer");
  if (flags > cudaStreamNonBlocking) return fail(cudaErrorInvalidValue, "cudaStreamCreateWithFlags: unknown flags");
  Lock lk(state().mu);
  if (emud::refuse_in_op("cudaStreamCreate")) return cudaErrorNotPermitted;
  auto owned = std::make_unique<CUstream_st>();
  owned->device = emud::tls_device;
  owned->flags = flags;
  owned->id = ++state().next_stream_id;
  *s = owned.get();
  emud::current().streams.push_back(owned.get());
  state().streams.emplace(owned.get(), std::move(owned));
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  Lock lk(state().mu);
  if (s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread)
    return fail(cudaErrorInvalidResourceHandle, "cudaStreamDestroy: a default stream cannot be destroyed");
  if (emud::resolve(s, "cudaStreamDestroy") == nullptr) return cudaErrorInvalidResourceHandle;
  s->destroyed = true;  // its queued work still runs; the object stays for the waits that name it
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  Lock lk(state().mu);
  if (emud::refuse_in_op("cudaStreamSynchronize")) return cudaErrorNotPermitted;
  CUstream_st* s = emud::resolve(stream, "cudaStreamSynchronize");
  if (s == nullptr) return cudaErrorInvalidResourceHandle;
  emud::count_sync("cudaStreamSynchronize");
  emud::advance(lk, s, s->last_seq, true);
  return emud::sticky(emud::device(s->device));
}
cudaError_t cudaStreamQuery(cudaStream_t stream) {
  Lock lk(state().mu);
  if (emud::refuse_in_op("cudaStreamQuery")) return cudaErrorNotPermitted;
  CUstream_st* s = emud::resolve(stream, "cudaStreamQuery");
  if (s == nullptr) return cudaErrorInvalidResourceHandle;
  if (cudaError_t e = emud::sticky(emud::device(s->device)); e != cudaSuccess) return e;
  if (s->idle()) return cudaSuccess;
  // The first query of a given tail answers "not ready" (a GPU may still be busy); later ones make progress.
  if (std::exchange(s->queried_seq, s->last_seq) != s->last_seq) return cudaErrorNotReady;
  emud::advance(lk, s, s->last_seq, false);
  if (cudaError_t e = emud::sticky(emud::device(s->device)); e != cudaSuccess) return e;
  return s->idle() ? cudaSuccess : cudaErrorNotReady;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t e, unsigned flags) {
  Lock lk(state().mu);
  if (emud::refuse_in_op("cudaStreamWaitEvent")) return cudaErrorNotPermitted;
  CUstream_st* s = emud::resolve(stream, "cudaStreamWaitEvent");
  if (s == nullptr || emud::resolve(e, "cudaStreamWaitEvent") == nullptr) return cudaErrorInvalidResourceHandle;
  if (flags != 0) return fail(cudaErrorInvalidValue, "cudaStreamWaitEvent: flags must be 0");
  if (!e->recorded()) return cudaSuccess;  // waiting for a never-recorded event does nothing
  emud::Op w = emud::wait_op(e->record_stream, e->record_seq);
  w.name = "cudaStreamWaitEvent";
  emud::enqueue_op(lk, s, std::move(w));
  return cudaSuccess;
}
cudaError_t cudaStreamGetFlags(cudaStream_t stream, unsigned* flags) {
  Lock lk(state().mu);
  CUstream_st* s = emud::resolve(stream, "cudaStreamGetFlags");
  if (s == nullptr) return cudaErrorInvalidResourceHandle;
  if (flags == nullptr) return fail(cudaErrorInvalidValue);
  *flags = s->flags;
  return cudaSuccess;
}

// ---- events ----
cudaError_t cudaEventCreate(cudaEvent_t* e) { return cudaEventCreateWithFlags(e, cudaEventDefault); }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned flags) {
  if (e == nullptr) return fail(cudaErrorInvalidValue, "cudaEventCreateWithFlags: null result pointer");
  if (flags > (cudaEventBlockingSync | cudaEventDisableTiming))
    return fail(cudaErrorInvalidValue, "cudaEventCreateWithFlags: unknown flags");
  Lock lk(state().mu);
  auto owned = std::make_unique<CUevent_st>();
  owned->device = emud::tls_device;
  owned->flags = flags;
  *e = owned.get();
  state().events.emplace(owned.get(), std::move(owned));
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  Lock lk(state().mu);
  if (emud::resolve(e, "cudaEventDestroy") == nullptr) return cudaErrorInvalidResourceHandle;
  e->destroyed = true;  // kept: queued waits may still name its record
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t stream) {
  Lock lk(state().mu);
  if (emud::refuse_in_op("cudaEventRecord")) return cudaErrorNotPermitted;
  CUstream_st* s = emud::resolve(stream, "cudaEventRecord");
  if (s == nullptr || emud::resolve(e, "cudaEventRecord") == nullptr) return cudaErrorInvalidResourceHandle;
  if (e->device != s->device)
    return fail(cudaErrorInvalidResourceHandle, "cudaEventRecord: event of device " + std::to_string(e->device) +
                                                    " recorded on a stream of device " + std::to_string(s->device));
  if (cudaError_t err = emud::sticky(emud::device(s->device)); err != cudaSuccess) return err;
  emud::Op r;
  r.kind = emud::Op::Kind::record;
  r.name = "cudaEventRecord";
  r.event = e;
  e->record_stream = s;
  emud::enqueue_op(lk, s, std::move(r));
  e->record_seq = s->last_seq;
  return cudaSuccess;
}
cudaError_t cudaEventQuery(cudaEvent_t e) {
  Lock lk(state().mu);
  if (emud::refuse_in_op("cudaEventQuery")) return cudaErrorNotPermitted;
  if (emud::resolve(e, "cudaEventQuery") == nullptr) return cudaErrorInvalidResourceHandle;
  if (e->complete()) return emud::sticky(emud::device(e->device));
  // The first query of a record answers "not ready" (a GPU may still be busy); later ones make progress.
  if (std::exchange(e->queried_seq, e->record_seq) != e->record_seq) return cudaErrorNotReady;
  emud::advance(lk, e->record_stream, e->record_seq, false);
  if (cudaError_t err = emud::sticky(emud::device(e->device)); err != cudaSuccess) return err;
  return e->complete() ? cudaSuccess : cudaErrorNotReady;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  Lock lk(state().mu);
  if (emud::refuse_in_op("cudaEventSynchronize")) return cudaErrorNotPermitted;
  if (emud::resolve(e, "cudaEventSynchronize") == nullptr) return cudaErrorInvalidResourceHandle;
  emud::count_sync("cudaEventSynchronize");
  if (e->recorded()) emud::advance(lk, e->record_stream, e->record_seq, true);
  return emud::sticky(emud::device(e->device));
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  Lock lk(state().mu);
  if (ms == nullptr || start == nullptr || end == nullptr) return fail(cudaErrorInvalidValue);
  if (emud::resolve(start, "cudaEventElapsedTime") == nullptr || emud::resolve(end, "cudaEventElapsedTime") == nullptr)
    return cudaErrorInvalidResourceHandle;
  if (!start->recorded() || !end->recorded() || ((start->flags | end->flags) & cudaEventDisableTiming))
    return fail(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: an event was not recorded or has no timing");
  if (!start->complete() || !end->complete()) return fail(cudaErrorNotReady);
  *ms = std::chrono::duration<float, std::milli>(end->when - start->when).count();
  return cudaSuccess;
}
