/// @file kernels/cuda/emulator/nccl.cpp @brief Emulated NCCL (include/nccl.h): ranks in threads or processes meet in a POSIX shared-memory segment; collectives are queued on their stream and move data through it without ever blocking.
//
// Rendezvous. ncclGetUniqueId only makes a name ("/ember-nccl-<pid>-<random>", stored in the id). The
// first rank to reach ncclCommInitRank creates the segment (shm_open O_EXCL), sizes it for nranks and
// marks it ready; the others map it, claim their rank and record their device. Once every rank has
// joined, each checks that no two ranks share a device (NCCL's "Duplicate GPU detected") and unlinks the
// name, so nothing is left in /dev/shm; a rank that gives up (timeout, abort, bad arguments) marks the
// segment failed, so that the others fail at once, and unlinks it too.
//
// Segment layout: Header | RankRecord[nranks] | nranks data slots of slot_bytes each. A collective is
// cut into steps of at most one slot of data per rank; steps are numbered per communicator (every rank
// issues the same collectives in the same order, so the numbers agree). Step s on rank r:
//   post:    once every rank's `consumed` >= s-1 (nobody still reads r's slot), r copies its part of the
//            step into its slot, records the collective's description, and sets posted = s;
//   collect: once every rank's `posted` >= s, r checks that all descriptions agree, computes its output
//            from the slots (reductions fold the slots in rank order, so every rank gets the same,
//            deterministic result), and sets consumed = s.
// The queued work function does as many of these as it can and returns WorkStatus::pending when it must
// wait for a peer; past the timeout without progress it records ncclRemoteError on the communicator,
// says on stderr that a GPU would hang there, and completes without writing the rest of the output.
// Polling ncclCommGetAsyncError (and ncclCommFinalize) queries the streams of the communicator's queued
// collectives, so they progress as on a GPU even when nothing synchronizes those streams.
//
// Differences from NCCL: communicators are not initialized inside ncclGroupStart/End (ncclInvalidUsage;
// use a thread or process per rank); ncclFloat16/ncclBfloat16/FP8 are copied but not reduced
// (ncclInvalidUsage); buffer ranges are always checked (as NCCL_CHECK_POINTERS=1 would check their
// start); ncclGetLastError is per host thread; mismatched collectives across ranks are reported
// (ncclInvalidUsage) where a GPU would hang or corrupt data.
//
// Environment (read at each ncclCommInitRank):
//   EMBER_EMU_NCCL_TIMEOUT_MS    how long init waits for the other ranks, and a collective for a peer
//                                that makes no progress (default 60000: a peer busy in slow emulated
//                                kernels, under a sanitizer, is not mistaken for a dead one, and a real
//                                hang still ends with an error within a minute)
//   EMBER_EMU_NCCL_CHUNK_BYTES   bytes of each rank's data slot, the step size (default 1 MiB; the rank
//                                that creates the segment decides)
//   NCCL_DEBUG=WARN|INFO         errors are also printed to stderr, as NCCL does
#include <fcntl.h>
#include <nccl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/cuda/emulator/device_work.h"

namespace ember::emu::nccl {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kNamePrefix[] = "/ember-nccl-";
constexpr std::uint32_t kReadyMagic = 0x454d4e43;  // "EMNC"
constexpr std::chrono::milliseconds kDefaultTimeout{60000};
constexpr std::size_t kDefaultSlotBytes = std::size_t{1} << 20;
constexpr auto kInitPoll = std::chrono::microseconds(200);

// ---- environment -------------------------------------------------------------------------------

/// A positive integer from the environment, or `fallback` (with a note on stderr when malformed).
std::uint64_t env_positive(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const unsigned long long n = std::strtoull(v, &end, 10);
  if (*end == '\0' && n > 0) return n;
  std::fprintf(stderr, "ember emulator: ignoring %s=%s (expected a positive integer)\n", name, v);
  return fallback;
}

std::chrono::milliseconds timeout_from_env() {
  return std::chrono::milliseconds(env_positive("EMBER_EMU_NCCL_TIMEOUT_MS", kDefaultTimeout.count()));
}

/// NCCL_DEBUG asks for warnings on stderr (WARN, INFO or TRACE).
bool debug_warnings() {
  const char* v = std::getenv("NCCL_DEBUG");
  return v != nullptr && (std::strcmp(v, "WARN") == 0 || std::strcmp(v, "INFO") == 0 || std::strcmp(v, "TRACE") == 0);
}

// ---- errors --------------------------------------------------------------------------------------

/// Message of the last error on this host thread (ncclGetLastError).
thread_local std::string tls_last_error;

/// Records `message` as this thread's last error and returns `result`.
ncclResult_t fail(ncclResult_t result, std::string message) {
  if (debug_warnings()) std::fprintf(stderr, "NCCL WARN (emulated) %s\n", message.c_str());
  tls_last_error = std::move(message);
  return result;
}

/// printf-style formatting into a std::string.
template <class... A>
std::string format(const char* fmt, A... args) {
  const int n = std::snprintf(nullptr, 0, fmt, args...);
  std::string s(static_cast<std::size_t>(std::max(n, 0)), '\0');
  std::snprintf(s.data(), s.size() + 1, fmt, args...);
  return s;
}

/// "rank 1", "ranks 1, 2".
std::string rank_list(const std::vector<int>& ranks) {
  std::string s = ranks.size() == 1 ? "rank " : "ranks ";
  for (std::size_t i = 0; i < ranks.size(); ++i) s += (i ? ", " : "") + std::to_string(ranks[i]);
  return s;
}

// ---- the shared segment --------------------------------------------------------------------------

/// Why a rank gave up on the communicator (Header::failure).
enum class Failure : std::uint32_t { none, aborted, timed_out, init_failed, mismatch };

/// What a step's data belongs to; every rank's must agree.
struct OpDesc {
  std::int32_t kind = 0, datatype = 0, op = 0, root = 0;
  std::uint64_t count = 0, seq = 0;
  bool operator==(const OpDesc&) const = default;
};

struct alignas(64) Header {
  std::uint32_t ready;  ///< kReadyMagic once the creator has filled in the rest
  std::int32_t nranks;
  std::uint64_t slot_bytes;
  std::uint64_t total_bytes;
  std::int32_t joined;    ///< ranks that have claimed their record
  std::uint64_t failure;  ///< 0, or (Failure << 32) | (rank + 1) of the first rank that gave up
};

struct alignas(64) RankRecord {
  std::int32_t claimed;  ///< 1 once the rank joined
  std::int32_t device;
  std::int64_t pid;
  std::uint64_t posted;    ///< last step whose data this rank has written into its slot
  std::uint64_t consumed;  ///< last step whose slots this rank has read
  OpDesc desc;             ///< the collective of the step last posted
};

static_assert(std::atomic_ref<std::uint64_t>::is_always_lock_free && std::atomic_ref<std::int32_t>::is_always_lock_free,
              "the shared segment needs address-free atomics");

template <class T>
T load(T& field) {
  return std::atomic_ref<T>(field).load(std::memory_order_acquire);
}
template <class T>
void store(T& field, T value) {
  std::atomic_ref<T>(field).store(value, std::memory_order_release);
}

/// This process's mapping of one communicator's segment (unmapped on destruction).
class Segment {
 public:
  Segment(void* base, std::size_t bytes) : base_(static_cast<std::byte*>(base)), bytes_(bytes) {}
  ~Segment() { munmap(base_, bytes_); }
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;

  static std::size_t data_offset(int nranks) { return sizeof(Header) + sizeof(RankRecord) * std::size_t(nranks); }
  static std::size_t total_bytes(int nranks, std::size_t slot_bytes) {
    return data_offset(nranks) + std::size_t(nranks) * slot_bytes;
  }

  Header& header() const { return *reinterpret_cast<Header*>(base_); }
  RankRecord& rank(int r) const { return reinterpret_cast<RankRecord*>(base_ + sizeof(Header))[r]; }
  std::byte* slot(int r) const {
    return base_ + data_offset(header().nranks) + std::size_t(r) * header().slot_bytes;
  }
  std::size_t slot_bytes() const { return header().slot_bytes; }

  /// Records the first failure; later ones keep the first.
  void mark_failed(Failure why, int rank) const {
    std::uint64_t expected = 0;
    const std::uint64_t value = (std::uint64_t(why) << 32) | std::uint32_t(rank + 1);
    std::atomic_ref<std::uint64_t>(header().failure).compare_exchange_strong(expected, value);
  }
  /// The recorded failure, as a sentence ("" when none).
  std::string failure() const {
    const std::uint64_t f = load(header().failure);
    if (f == 0) return {};
    const int who = int(std::uint32_t(f)) - 1;
    switch (Failure(f >> 32)) {
      case Failure::aborted: return format("rank %d aborted the communicator (ncclCommAbort)", who);
      case Failure::timed_out: return format("rank %d gave up waiting for a peer (timeout)", who);
      case Failure::init_failed: return format("rank %d failed to join the communicator", who);
      case Failure::mismatch: return format("rank %d found mismatched collectives", who);
      case Failure::none: break;
    }
    return format("rank %d failed", who);
  }

 private:
  std::byte* base_;
  std::size_t bytes_;
};

/// The segment's name from an id made by ncclGetUniqueId, or "" when the id is not one.
std::string segment_name(const ncclUniqueId& id) {
  const char* end = static_cast<const char*>(std::memchr(id.internal, '\0', sizeof id.internal));
  const std::size_t prefix = sizeof kNamePrefix - 1;
  if (end == nullptr || std::size_t(end - id.internal) <= prefix || std::memcmp(id.internal, kNamePrefix, prefix) != 0)
    return {};
  return std::string(id.internal, end);
}

// ---- datatypes and reductions --------------------------------------------------------------------

std::size_t type_size(ncclDataType_t t) {
  switch (t) {
    case ncclInt8: case ncclUint8: case ncclFloat8e4m3: case ncclFloat8e5m2: return 1;
    case ncclFloat16: case ncclBfloat16: return 2;
    case ncclInt32: case ncclUint32: case ncclFloat32: return 4;
    case ncclInt64: case ncclUint64: case ncclFloat64: return 8;
    default: return 0;
  }
}

const char* type_name(ncclDataType_t t) {
  static const char* const names[] = {"ncclInt8",    "ncclUint8",   "ncclInt32",   "ncclUint32",
                                      "ncclInt64",   "ncclUint64",  "ncclFloat16", "ncclFloat32",
                                      "ncclFloat64", "ncclBfloat16", "ncclFloat8e4m3", "ncclFloat8e5m2"};
  return t >= 0 && t < ncclNumTypes ? names[t] : "invalid type";
}

/// Whether the emulator reduces this type (the copies take every type).
bool reducible(ncclDataType_t t) {
  return t == ncclInt8 || t == ncclUint8 || t == ncclInt32 || t == ncclUint32 || t == ncclInt64 || t == ncclUint64 ||
         t == ncclFloat32 || t == ncclFloat64;
}

/// a + b and a * b, wrapping for integers (as the GPU does) instead of overflowing.
template <class T>
T wrap_add(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    return T(U(U(a) + U(b)));
  } else {
    return a + b;
  }
}
template <class T>
T wrap_mul(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    using U = std::conditional_t<(sizeof(T) < sizeof(unsigned)), unsigned, std::make_unsigned_t<T>>;
    return T(U(U(a) * U(b)));
  } else {
    return a * b;
  }
}

/// Element i of rank r's input (inputs are slots in shared memory, read bytewise).
template <class T>
T element(const std::byte* in, std::size_t i) {
  T v;
  std::memcpy(&v, in + i * sizeof(T), sizeof(T));
  return v;
}

/// out[i] = f(...f(f(pre(in[0][i]), pre(in[1][i])), ...), pre(in[n-1][i])): the slots folded in rank order.
template <class T, class Pre, class F>
void fold(std::byte* out, const std::vector<const std::byte*>& in, std::size_t len, Pre pre, F f) {
  for (std::size_t i = 0; i < len; ++i) {
    T acc = pre(element<T>(in[0], i));
    for (std::size_t r = 1; r < in.size(); ++r) acc = f(acc, pre(element<T>(in[r], i)));
    std::memcpy(out + i * sizeof(T), &acc, sizeof(T));
  }
}

/// Reduces `len` elements of every input into out with `op`. ncclAvg is NCCL's: floating types scale
/// each input by 1/nranks before the sum, integers divide the sum (truncating).
template <class T>
void reduce_typed(std::byte* out, const std::vector<const std::byte*>& in, std::size_t len, ncclRedOp_t op) {
  const auto same = [](T v) { return v; };
  switch (op) {
    case ncclSum: return fold<T>(out, in, len, same, wrap_add<T>);
    case ncclProd: return fold<T>(out, in, len, same, wrap_mul<T>);
    case ncclMax: return fold<T>(out, in, len, same, [](T a, T b) { return a < b ? b : a; });
    case ncclMin: return fold<T>(out, in, len, same, [](T a, T b) { return b < a ? b : a; });
    case ncclAvg:
      if constexpr (std::is_floating_point_v<T>) {
        const T scale = T(1.0 / double(in.size()));
        return fold<T>(out, in, len, [scale](T v) { return v * scale; }, wrap_add<T>);
      } else {
        fold<T>(out, in, len, same, wrap_add<T>);
        for (std::size_t i = 0; i < len; ++i) {
          const T v = T(element<T>(out, i) / T(in.size()));
          std::memcpy(out + i * sizeof(T), &v, sizeof(T));
        }
        return;
      }
    default: return;
  }
}

void reduce(std::byte* out, const std::vector<const std::byte*>& in, std::size_t len, ncclDataType_t t,
            ncclRedOp_t op) {
  switch (t) {
    case ncclInt8: return reduce_typed<std::int8_t>(out, in, len, op);
    case ncclUint8: return reduce_typed<std::uint8_t>(out, in, len, op);
    case ncclInt32: return reduce_typed<std::int32_t>(out, in, len, op);
    case ncclUint32: return reduce_typed<std::uint32_t>(out, in, len, op);
    case ncclInt64: return reduce_typed<std::int64_t>(out, in, len, op);
    case ncclUint64: return reduce_typed<std::uint64_t>(out, in, len, op);
    case ncclFloat32: return reduce_typed<float>(out, in, len, op);
    case ncclFloat64: return reduce_typed<double>(out, in, len, op);
    default: return;
  }
}

// ---- communicator state ----------------------------------------------------------------------------

enum class Kind { all_reduce, broadcast, reduce, all_gather, reduce_scatter };

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::all_reduce: return "ncclAllReduce";
    case Kind::broadcast: return "ncclBroadcast";
    case Kind::reduce: return "ncclReduce";
    case Kind::all_gather: return "ncclAllGather";
    case Kind::reduce_scatter: return "ncclReduceScatter";
  }
  return "collective";
}

/// One collective of one rank, with its progress through the steps.
struct Op {
  Kind kind = Kind::all_reduce;
  const std::byte* send = nullptr;
  std::byte* recv = nullptr;
  std::size_t count = 0;  ///< elements per rank: count, sendcount (all-gather) or recvcount (reduce-scatter)
  ncclDataType_t type = ncclFloat32;
  ncclRedOp_t op = ncclSum;
  int root = 0;
  cudaStream_t stream = nullptr;
  std::size_t chunk = 0;  ///< elements of each block per step
  std::uint64_t steps = 0, first_step = 0, seq = 0;
  // progress
  std::uint64_t done = 0;
  bool posted = false, started = false;
  Clock::time_point last_progress{};
};

enum class InitPhase { open, join, wait_all, ready, failed };

/// A rank's communicator; shared by its handle and its queued collectives.
struct CommState {
  int rank = 0, nranks = 0, device = 0;
  bool blocking = true;
  std::chrono::milliseconds timeout{kDefaultTimeout};
  std::size_t requested_slot_bytes = kDefaultSlotBytes;
  std::string name;
  std::unique_ptr<Segment> segment;
  // Init progress: advanced by the API calls of the owning thread.
  InitPhase phase = InitPhase::open;
  Clock::time_point init_start{};
  // Issue order (API calls).
  std::uint64_t next_step = 1, next_seq = 0;
  bool finalized = false;
  bool call_in_progress = false;  ///< a non-blocking call returned ncclInProgress and nobody polled since
  // Shared with the queued work, which may run on another host thread (with the runtime's lock held:
  // never call the runtime while holding m).
  std::atomic<bool> aborted{false};
  std::mutex m;
  ncclResult_t async = ncclSuccess;
  std::string async_message;
  std::vector<cudaStream_t> queued;  ///< the stream of each queued collective that has not completed

  void add_queued(cudaStream_t s) {
    std::lock_guard lock(m);
    queued.push_back(s);
  }
  void remove_queued(cudaStream_t s) {
    std::lock_guard lock(m);
    if (auto it = std::find(queued.begin(), queued.end(), s); it != queued.end()) queued.erase(it);
  }
  std::vector<cudaStream_t> queued_streams() {
    std::lock_guard lock(m);
    return queued;
  }

  /// Records an asynchronous error (the first one stays).
  void set_async(ncclResult_t r, std::string message) {
    std::lock_guard lock(m);
    if (async != ncclSuccess && async != ncclInProgress) return;
    async = r;
    async_message = std::move(message);
  }
  ncclResult_t async_state(std::string* message = nullptr) {
    std::lock_guard lock(m);
    if (message) *message = async_message;
    return async;
  }
  std::string who() const { return format("rank %d of %d (device %d)", rank, nranks, device); }
};

}  // namespace
}  // namespace ember::emu::nccl

/// The handle behind ncclComm_t.
struct ncclComm {
  std::shared_ptr<ember::emu::nccl::CommState> state;
};

namespace ember::emu::nccl {
namespace {

// ---- init ------------------------------------------------------------------------------------------

/// Creates the segment as its first rank: sized for c.nranks, header filled in, then marked ready.
ncclResult_t create_segment(CommState& c, int fd) {
  const std::size_t slot = std::max<std::size_t>((c.requested_slot_bytes + 63) / 64 * 64, 64 * std::size_t(c.nranks));
  const std::size_t total = Segment::total_bytes(c.nranks, slot);
  void* base = MAP_FAILED;
  if (ftruncate(fd, off_t(total)) == 0) base = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int err = errno;
  close(fd);
  if (base == MAP_FAILED) {
    shm_unlink(c.name.c_str());
    return fail(ncclSystemError, format("ncclCommInitRank: cannot size or map %zu bytes of shared memory %s: %s", total,
                                       c.name.c_str(), std::strerror(err)));
  }
  c.segment = std::make_unique<Segment>(base, total);
  Header& h = c.segment->header();
  h.nranks = c.nranks;
  h.slot_bytes = slot;
  h.total_bytes = total;
  store(h.ready, kReadyMagic);
  return ncclSuccess;
}

/// Maps a segment another rank created; ncclInProgress while it is not ready yet.
ncclResult_t attach_segment(CommState& c) {
  const int fd = shm_open(c.name.c_str(), O_RDWR, 0);
  if (fd < 0) {
    if (errno == ENOENT) return ncclInProgress;  // unlinked by a failing creator: try to create it again
    return fail(ncclSystemError, format("ncclCommInitRank: shm_open(%s): %s", c.name.c_str(), std::strerror(errno)));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || st.st_size < off_t(sizeof(Header))) {
    close(fd);
    return ncclInProgress;  // the creator has not sized it yet
  }
  void* base = mmap(nullptr, std::size_t(st.st_size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int err = errno;
  close(fd);
  if (base == MAP_FAILED)
    return fail(ncclSystemError, format("ncclCommInitRank: mmap of %s: %s", c.name.c_str(), std::strerror(err)));
  auto seg = std::make_unique<Segment>(base, std::size_t(st.st_size));
  if (load(seg->header().ready) != kReadyMagic) return ncclInProgress;
  const Header& h = seg->header();
  if (h.nranks != c.nranks)
    return fail(ncclInvalidUsage, format("ncclCommInitRank: rank %d passed nranks = %d, but the communicator was "
                                         "created with nranks = %d",
                                         c.rank, c.nranks, h.nranks));
  if (h.total_bytes != std::uint64_t(st.st_size))
    return fail(ncclInternalError, format("ncclCommInitRank: shared memory %s has an unexpected size", c.name.c_str()));
  c.segment = std::move(seg);
  return ncclSuccess;
}

/// Creates the segment, or maps the one another rank created.
ncclResult_t open_segment(CommState& c) {
  const int fd = shm_open(c.name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd >= 0) return create_segment(c, fd);
  if (errno != EEXIST)
    return fail(ncclSystemError, format("ncclCommInitRank: shm_open(%s): %s", c.name.c_str(), std::strerror(errno)));
  return attach_segment(c);
}

/// Claims this rank's record and counts it as joined.
ncclResult_t join(CommState& c) {
  RankRecord& me = c.segment->rank(c.rank);
  std::int32_t expected = 0;
  if (!std::atomic_ref<std::int32_t>(me.claimed).compare_exchange_strong(expected, 1))
    return fail(ncclInvalidUsage, format("ncclCommInitRank: rank %d of %d joined the communicator twice", c.rank,
                                         c.nranks));
  me.device = c.device;
  me.pid = std::int64_t(getpid());
  std::atomic_ref<std::int32_t>(c.segment->header().joined).fetch_add(1, std::memory_order_acq_rel);
  return ncclSuccess;
}

/// Once every rank joined: NCCL's check that no two ranks use the same device.
ncclResult_t check_devices(const CommState& c) {
  for (int q = 0; q < c.nranks; ++q)
    if (q != c.rank && c.segment->rank(q).device == c.device)
      return fail(ncclInvalidUsage, format("ncclCommInitRank: Duplicate GPU detected : rank %d and rank %d both on "
                                           "CUDA device %d",
                                           c.rank, q, c.device));
  return ncclSuccess;
}

/// Ranks that have not joined yet.
std::vector<int> missing_ranks(const CommState& c) {
  std::vector<int> missing;
  for (int q = 0; q < c.nranks; ++q)
    if (load(c.segment->rank(q).claimed) == 0) missing.push_back(q);
  return missing;
}

/// Waits (without blocking) until every rank joined, a peer failed, or the timeout passed.
ncclResult_t wait_all(CommState& c) {
  if (load(c.segment->header().joined) == c.nranks) {
    shm_unlink(c.name.c_str());  // every rank has it mapped: the name is no longer needed
    return check_devices(c);
  }
  if (std::string why = c.segment->failure(); !why.empty())
    return fail(ncclRemoteError, "ncclCommInitRank: " + c.who() + ": " + why);
  if (Clock::now() - c.init_start <= c.timeout) return ncclInProgress;
  const std::string message =
      format("ncclCommInitRank: %s waited %lld ms (EMBER_EMU_NCCL_TIMEOUT_MS) for %s to join", c.who().c_str(),
             static_cast<long long>(c.timeout.count()), rank_list(missing_ranks(c)).c_str());
  std::fprintf(stderr, "ember emulator: %s; on a GPU the init would hang here\n", message.c_str());
  c.segment->mark_failed(Failure::timed_out, c.rank);
  return fail(ncclRemoteError, message);
}

/// Gives up on the rendezvous: peers are told, and the name is unlinked so nothing is left behind.
void abandon_init(CommState& c, Failure why) {
  if (c.segment) c.segment->mark_failed(why, c.rank);
  shm_unlink(c.name.c_str());
}

/// Advances the init as far as it can without blocking: ncclInProgress, ncclSuccess or an error
/// (the error is also the communicator's async state).
ncclResult_t progress_init(CommState& c) {
  if (c.phase == InitPhase::ready) return ncclSuccess;
  if (c.phase == InitPhase::failed) return c.async_state();
  ncclResult_t r = ncclSuccess;
  if (c.phase == InitPhase::open) {
    r = open_segment(c);
    if (r == ncclSuccess) c.phase = InitPhase::join;
  }
  if (c.phase == InitPhase::join) {
    r = join(c);
    if (r == ncclSuccess) c.phase = InitPhase::wait_all;
  }
  if (c.phase == InitPhase::wait_all) r = wait_all(c);
  if (r == ncclInProgress && c.phase == InitPhase::open && Clock::now() - c.init_start > c.timeout)
    r = fail(ncclRemoteError, format("ncclCommInitRank: %s could not open shared memory %s within %lld ms",
                                     c.who().c_str(), c.name.c_str(), static_cast<long long>(c.timeout.count())));
  if (r == ncclInProgress) return r;
  if (r == ncclSuccess) {
    c.phase = InitPhase::ready;
    std::lock_guard lock(c.m);
    c.async = ncclSuccess;
    return r;
  }
  abandon_init(c, r == ncclRemoteError ? Failure::timed_out : Failure::init_failed);
  c.phase = InitPhase::failed;
  std::lock_guard lock(c.m);
  c.async = r;
  c.async_message = tls_last_error;
  return r;
}

// ---- collectives: the queued work ------------------------------------------------------------------

/// The description every rank records for the step (all must agree).
OpDesc describe(const Op& op) {
  const bool rooted = op.kind == Kind::broadcast || op.kind == Kind::reduce;
  const bool reducing = op.kind != Kind::broadcast && op.kind != Kind::all_gather;
  return OpDesc{int(op.kind), int(op.type), reducing ? int(op.op) : -1, rooted ? op.root : -1, op.count, op.seq};
}

/// The element range [first, first + len) of step `k` of the op, within each block.
struct Range {
  std::size_t first, len;
};
Range step_range(const Op& op, std::uint64_t k) {
  const std::size_t first = std::size_t(k) * op.chunk;
  return {first, std::min(op.chunk, op.count - first)};
}

/// Copies this rank's part of step k into its slot.
void post(const CommState& c, const Op& op, std::uint64_t k) {
  const std::size_t es = type_size(op.type);
  const Range r = step_range(op, k);
  std::byte* slot = c.segment->slot(c.rank);
  switch (op.kind) {
    case Kind::broadcast:
      if (c.rank == op.root) std::memcpy(slot, op.send + r.first * es, r.len * es);
      break;
    case Kind::reduce_scatter:
      for (int b = 0; b < c.nranks; ++b)
        std::memcpy(slot + std::size_t(b) * op.chunk * es, op.send + (std::size_t(b) * op.count + r.first) * es,
                    r.len * es);
      break;
    default: std::memcpy(slot, op.send + r.first * es, r.len * es); break;
  }
}

/// Writes this rank's output of step k from every rank's slot.
void collect(const CommState& c, const Op& op, std::uint64_t k) {
  const std::size_t es = type_size(op.type);
  const Range r = step_range(op, k);
  std::vector<const std::byte*> in(std::size_t(c.nranks));
  for (int q = 0; q < c.nranks; ++q) in[std::size_t(q)] = c.segment->slot(q);
  switch (op.kind) {
    case Kind::all_reduce: reduce(op.recv + r.first * es, in, r.len, op.type, op.op); break;
    case Kind::reduce:
      if (c.rank == op.root) reduce(op.recv + r.first * es, in, r.len, op.type, op.op);
      break;
    case Kind::broadcast: std::memmove(op.recv + r.first * es, in[std::size_t(op.root)], r.len * es); break;
    case Kind::all_gather:
      for (int q = 0; q < c.nranks; ++q)
        std::memmove(op.recv + (std::size_t(q) * op.count + r.first) * es, in[std::size_t(q)], r.len * es);
      break;
    case Kind::reduce_scatter:
      for (auto& p : in) p += std::size_t(c.rank) * op.chunk * es;
      reduce(op.recv + r.first * es, in, r.len, op.type, op.op);
      break;
  }
}

/// Ranks whose `field` is still below `step`.
std::vector<int> behind(const CommState& c, std::uint64_t RankRecord::*field, std::uint64_t step) {
  std::vector<int> late;
  for (int q = 0; q < c.nranks; ++q)
    if (load(c.segment->rank(q).*field) < step) late.push_back(q);
  return late;
}

/// The op's identity in messages: "ncclAllReduce #3 (step 2 of 4) on rank 0 of 2 (device 0)".
std::string op_label(const CommState& c, const Op& op) {
  return format("%s #%llu (step %llu of %llu) on %s", kind_name(op.kind), static_cast<unsigned long long>(op.seq),
                static_cast<unsigned long long>(op.done + 1), static_cast<unsigned long long>(op.steps),
                c.who().c_str());
}

/// Runs as many steps of `op` as the peers allow. Returns false when it must wait for them.
bool advance(CommState& c, Op& op, std::vector<int>* waiting_for) {
  while (op.done < op.steps) {
    const std::uint64_t s = op.first_step + op.done;
    RankRecord& me = c.segment->rank(c.rank);
    if (!op.posted) {
      if (auto late = behind(c, &RankRecord::consumed, s - 1); !late.empty()) return *waiting_for = late, false;
      post(c, op, op.done);
      me.desc = describe(op);
      store(me.posted, s);
      op.posted = true;
      op.last_progress = Clock::now();
    }
    if (auto late = behind(c, &RankRecord::posted, s); !late.empty()) return *waiting_for = late, false;
    for (int q = 0; q < c.nranks; ++q)
      if (!(c.segment->rank(q).desc == me.desc)) {
        const std::string message =
            format("%s: rank %d issued a different collective at this point (kind, type, op, root, count or order "
                   "differ); on a GPU this would hang or corrupt data",
                   op_label(c, op).c_str(), q);
        std::fprintf(stderr, "ember emulator: %s\n", message.c_str());
        c.segment->mark_failed(Failure::mismatch, c.rank);
        c.set_async(ncclInvalidUsage, message);
        op.done = op.steps;
        return true;
      }
    collect(c, op, op.done);
    store(me.consumed, s);
    op.posted = false;
    ++op.done;
    op.last_progress = Clock::now();
  }
  return true;
}

/// The work queued for one collective: never blocks; WorkStatus::pending while it waits for a peer.
WorkStatus run(CommState& c, Op& op) {
  const auto finish = [&c, &op] {
    c.remove_queued(op.stream);
    return WorkStatus::done;
  };
  if (c.aborted.load(std::memory_order_acquire)) return finish();  // ncclCommAbort: completes without effect
  if (const ncclResult_t a = c.async_state(); a != ncclSuccess && a != ncclInProgress) return finish();
  if (!op.started) {
    op.started = true;
    op.last_progress = Clock::now();
  }
  std::vector<int> waiting_for;
  if (advance(c, op, &waiting_for)) return finish();
  if (std::string why = c.segment->failure(); !why.empty()) {
    c.set_async(ncclRemoteError, op_label(c, op) + ": " + why);
    return finish();
  }
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - op.last_progress);
  if (waited <= c.timeout) return WorkStatus::pending;
  const std::string message =
      format("%s waited %lld ms (EMBER_EMU_NCCL_TIMEOUT_MS) for %s, which did not arrive", op_label(c, op).c_str(),
             static_cast<long long>(waited.count()), rank_list(waiting_for).c_str());
  std::fprintf(stderr, "ember emulator: %s; on a GPU this collective would hang here (output left unwritten)\n",
               message.c_str());
  c.segment->mark_failed(Failure::timed_out, c.rank);
  c.set_async(ncclRemoteError, message);
  return finish();
}

// ---- collectives: validation and issue ---------------------------------------------------------------

/// Makes the communicator's device current for the scope (NCCL does the same around its launches).
class DeviceScope {
 public:
  explicit DeviceScope(int device) {
    const int current = current_device();
    if (current != device && cudaSetDevice(device) == cudaSuccess) saved_ = current;
  }
  ~DeviceScope() {
    if (saved_ >= 0) cudaSetDevice(saved_);
  }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  int saved_ = -1;
};

/// Lets the communicator's queued collectives make progress, as a GPU runs them without the host: their
/// streams are queried (with lazy streams the first query of new work answers "not ready", later ones
/// execute it, so a polling loop makes progress). Host code only, never inside queued work.
void drive(CommState& c) {
  std::vector<cudaStream_t> streams = c.queued_streams();
  if (streams.empty()) return;
  std::sort(streams.begin(), streams.end());
  streams.erase(std::unique(streams.begin(), streams.end()), streams.end());
  DeviceScope device(c.device);
  for (cudaStream_t s : streams)
    if (stream_device(s) == c.device) cudaStreamQuery(s);
}

/// NCCL's ncclCommEnsureReady: the communicator must be initialized, settled and free of errors.
ncclResult_t ensure_ready(CommState& c, const char* fn) {
  if (c.phase != InitPhase::ready && c.phase != InitPhase::failed) progress_init(c);
  if (c.phase == InitPhase::open || c.phase == InitPhase::join || c.phase == InitPhase::wait_all || c.call_in_progress)
    return fail(ncclInvalidArgument, std::string(fn) + ": Attempt to use communicator before the previous operation "
                                                       "returned ncclSuccess (poll ncclCommGetAsyncError)");
  std::string message;
  if (const ncclResult_t a = c.async_state(&message); a != ncclSuccess)
    return fail(a, std::string(fn) + ": " + message);
  return ncclSuccess;
}

/// A buffer argument must lie in device memory of the communicator's device.
ncclResult_t check_buffer(const CommState& c, const void* p, std::size_t bytes, const char* fn, const char* what) {
  const int d = device_of(p, bytes);
  if (d == c.device) return ncclSuccess;
  if (d < 0)
    return fail(ncclInvalidArgument, format("%s : %s %p (%zu bytes) is not a valid pointer: not inside one cudaMalloc "
                                            "allocation",
                                            fn, what, p, bytes));
  return fail(ncclInvalidArgument, format("%s : %s allocated on device %d mismatchs with NCCL device %d", fn, what, d,
                                          c.device));
}

/// Bytes of `count` elements of `es` bytes times `blocks`, or 0 on overflow.
std::size_t checked_bytes(std::size_t count, std::size_t es, int blocks) {
  const std::size_t per = std::size_t(blocks) * es;
  return count > SIZE_MAX / per ? 0 : count * per;
}

/// NCCL's argument checks (plus the emulator's: whole buffer ranges, the stream's device, reducible types).
ncclResult_t validate(CommState& c, const Op& op, const char* fn) {
  if (op.root < 0 || op.root >= c.nranks)
    return fail(ncclInvalidArgument, format("%s : invalid root %d (root should be in the 0..%d range)", fn, op.root,
                                            c.nranks));
  if (op.type < 0 || op.type >= ncclNumTypes)
    return fail(ncclInvalidArgument, format("%s : invalid type %d", fn, op.type));
  if (op.op < 0 || op.op >= ncclNumOps)
    return fail(ncclInvalidArgument, format("%s : invalid reduction operation %d", fn, op.op));
  const bool reducing = op.kind != Kind::broadcast && op.kind != Kind::all_gather;
  if (reducing && !reducible(op.type))
    return fail(ncclInvalidUsage, format("%s : the emulated NCCL does not reduce %s (it reduces the integer types, "
                                         "ncclFloat32 and ncclFloat64)",
                                         fn, type_name(op.type)));
  if (op.count == 0) return ncclSuccess;
  const std::size_t es = type_size(op.type);
  const int send_blocks = op.kind == Kind::reduce_scatter ? c.nranks : 1;
  const int recv_blocks = op.kind == Kind::all_gather ? c.nranks : 1;
  const std::size_t send_bytes = checked_bytes(op.count, es, send_blocks),
                    recv_bytes = checked_bytes(op.count, es, recv_blocks);
  if (send_bytes == 0 || recv_bytes == 0)
    return fail(ncclInvalidArgument, format("%s : count %zu of %s is too large", fn, op.count, type_name(op.type)));
  ncclResult_t r = ncclSuccess;
  if (op.kind != Kind::broadcast || c.rank == op.root) r = check_buffer(c, op.send, send_bytes, fn, "sendbuff");
  if (r == ncclSuccess && (op.kind != Kind::reduce || c.rank == op.root))
    r = check_buffer(c, op.recv, recv_bytes, fn, "recvbuff");
  if (r != ncclSuccess) return r;
  const int sd = stream_device(op.stream);
  if (sd < 0)
    return fail(ncclInvalidArgument, format("%s : stream %p is not a valid stream", fn, static_cast<void*>(op.stream)));
  if (sd != c.device)
    return fail(ncclUnhandledCudaError, format("%s : stream of device %d, but the communicator is on device %d "
                                               "(cudaErrorInvalidResourceHandle at launch)",
                                               fn, sd, c.device));
  return ncclSuccess;
}

/// The device spans the queued op touches (checked again by the runtime when it runs).
std::vector<DeviceSpan> spans(const CommState& c, const Op& op) {
  const std::size_t es = type_size(op.type);
  std::vector<DeviceSpan> s;
  if (op.kind != Kind::broadcast || c.rank == op.root)
    s.push_back({op.send, op.count * es * std::size_t(op.kind == Kind::reduce_scatter ? c.nranks : 1), "sendbuff"});
  if (op.kind != Kind::reduce || c.rank == op.root)
    s.push_back({op.recv, op.count * es * std::size_t(op.kind == Kind::all_gather ? c.nranks : 1), "recvbuff"});
  return s;
}

/// Numbers the op's steps and queues it on its stream.
ncclResult_t enqueue_op(const std::shared_ptr<CommState>& c, Op op) {
  DeviceScope device(c->device);
  const std::size_t blocks = op.kind == Kind::reduce_scatter ? std::size_t(c->nranks) : 1;
  op.chunk = std::max<std::size_t>(1, c->segment->slot_bytes() / (type_size(op.type) * blocks));
  op.steps = (op.count + op.chunk - 1) / op.chunk;
  op.first_step = c->next_step;
  op.seq = c->next_seq++;
  c->next_step += op.steps;
  c->add_queued(op.stream);
  const std::vector<DeviceSpan> touched = spans(*c, op);
  const cudaError_t e = enqueue(op.stream, kind_name(op.kind), touched,
                                [c, op]() mutable { return run(*c, op); });
  if (e == cudaSuccess) return ncclSuccess;
  c->remove_queued(op.stream);
  const std::string message = format("%s: queueing on the stream failed: %s", kind_name(op.kind), cudaGetErrorName(e));
  c->set_async(ncclUnhandledCudaError, message + " (the peers will wait for this rank)");
  return fail(ncclUnhandledCudaError, message);
}

// ---- groups ----------------------------------------------------------------------------------------

/// The calling thread's ncclGroupStart/End state.
struct Group {
  int depth = 0;
  ncclResult_t error = ncclSuccess;
  int blocking = -1;  ///< of the communicators in the group (NCCL refuses to mix)
  std::vector<std::pair<std::shared_ptr<CommState>, Op>> ops;
};
thread_local Group tls_group;

/// Remembers the first error of a group (ncclGroupEnd returns it and issues nothing).
ncclResult_t group_error(ncclResult_t r) {
  if (tls_group.depth > 0 && r != ncclSuccess && tls_group.error == ncclSuccess) tls_group.error = r;
  return r;
}

/// Validates a collective and issues it, or adds it to the current group.
ncclResult_t collective(ncclComm_t comm, Op op, const char* fn) {
  if (comm == nullptr) return group_error(fail(ncclInvalidArgument, std::string(fn) + " : comm argument is NULL"));
  const std::shared_ptr<CommState> c = comm->state;  // a copy: another thread may ncclCommAbort the handle meanwhile
  if (const ncclResult_t r = ensure_ready(*c, fn); r != ncclSuccess) return group_error(r);
  if (c->finalized) return group_error(fail(ncclInvalidUsage, std::string(fn) + ": the communicator was finalized"));
  DeviceScope device(c->device);
  if (const ncclResult_t r = validate(*c, op, fn); r != ncclSuccess) return group_error(r);
  if (op.count == 0) return ncclSuccess;  // as NCCL: empty collectives are dropped
  if (tls_group.depth > 0) {
    if (tls_group.blocking >= 0 && tls_group.blocking != int(c->blocking))
      return group_error(fail(ncclInvalidArgument, std::string(fn) + ": Blocking and nonblocking communicators are not "
                                                                     "allowed in the same group."));
    tls_group.blocking = int(c->blocking);
    tls_group.ops.emplace_back(c, op);
    return ncclSuccess;
  }
  if (const ncclResult_t r = enqueue_op(c, op); r != ncclSuccess) return r;
  if (c->blocking) return ncclSuccess;
  c->call_in_progress = true;
  return ncclInProgress;
}

Op make_op(Kind kind, const void* send, void* recv, std::size_t count, ncclDataType_t type, ncclRedOp_t op, int root,
           cudaStream_t stream) {
  Op o;
  o.kind = kind;
  o.send = static_cast<const std::byte*>(send);
  o.recv = static_cast<std::byte*>(recv);
  o.count = count;
  o.type = type;
  o.op = op;
  o.root = root;
  o.stream = stream;
  return o;
}

// ---- init entry ------------------------------------------------------------------------------------

/// Checks the arguments and starts joining; blocking comms wait here until done.
ncclResult_t init_rank(ncclComm_t* out, int nranks, const ncclUniqueId& id, int rank, bool blocking) {
  auto c = std::make_shared<CommState>();
  c->rank = rank;
  c->nranks = nranks;
  c->device = current_device();
  c->blocking = blocking;
  c->timeout = timeout_from_env();
  c->requested_slot_bytes = env_positive("EMBER_EMU_NCCL_CHUNK_BYTES", kDefaultSlotBytes);
  c->name = segment_name(id);
  c->init_start = Clock::now();
  {
    std::lock_guard lock(c->m);
    c->async = ncclInProgress;
  }
  ncclResult_t r = progress_init(*c);
  if (!blocking) {
    *out = new ncclComm{c};
    return ncclInProgress;
  }
  while (r == ncclInProgress) {
    std::this_thread::sleep_for(kInitPoll);
    r = progress_init(*c);
  }
  if (r != ncclSuccess) return r;
  *out = new ncclComm{c};
  return ncclSuccess;
}

}  // namespace
}  // namespace ember::emu::nccl

// ==== the API ============================================================================================

using namespace ember::emu::nccl;

ncclResult_t ncclGetVersion(int* version) {
  if (version == nullptr) return fail(ncclInvalidArgument, "ncclGetVersion : version argument is NULL");
  *version = NCCL_VERSION_CODE;
  return ncclSuccess;
}

ncclResult_t ncclGetUniqueId(ncclUniqueId* uniqueId) {
  if (uniqueId == nullptr) return fail(ncclInvalidArgument, "ncclGetUniqueId : uniqueId argument is NULL");
  static std::atomic<std::uint64_t> counter{0};
  std::random_device rd;
  const std::uint64_t random = (std::uint64_t(rd()) << 32) ^ rd() ^
                               std::uint64_t(Clock::now().time_since_epoch().count()) ^ (counter++ << 48);
  const std::string name = format("%s%ld-%016llx", kNamePrefix, static_cast<long>(getpid()),
                                  static_cast<unsigned long long>(random));
  std::memset(uniqueId->internal, 0, sizeof uniqueId->internal);
  std::memcpy(uniqueId->internal, name.c_str(), name.size());
  return ncclSuccess;
}

ncclResult_t ncclCommInitRankConfig(ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank, ncclConfig_t* config) {
  if (comm == nullptr) return fail(ncclInvalidArgument, "CommInitRank : newcomm argument is NULL");
  *comm = nullptr;
  if (config == nullptr) return fail(ncclInvalidArgument, "CommInitRank : config argument is NULL");
  if (nranks < 1 || rank < 0 || rank >= nranks)
    return fail(ncclInvalidArgument, format("Invalid rank requested : %d/%d", rank, nranks));
  if (config->magic != 0xcafebeef)
    return fail(ncclInvalidArgument, "ncclConfig_t argument not initialized via NCCL_CONFIG_INITIALIZER");
  const int blocking = config->blocking == NCCL_CONFIG_UNDEF_INT ? 1 : config->blocking;
  if (blocking != 0 && blocking != 1)
    return fail(ncclInvalidArgument, format("Invalid config blocking attribute value %d", config->blocking));
  if (segment_name(commId).empty())
    return fail(ncclInvalidArgument, "ncclCommInitRank : the ncclUniqueId was not made by ncclGetUniqueId");
  if (tls_group.depth > 0)
    return group_error(fail(ncclInvalidUsage,
                            "ncclCommInitRank : the emulated NCCL does not initialize communicators "
                            "inside ncclGroupStart/ncclGroupEnd (use one thread or process per rank)"));
  return init_rank(comm, nranks, commId, rank, blocking == 1);
}

ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank) {
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  return ncclCommInitRankConfig(comm, nranks, commId, rank, &config);
}

ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* asyncError) {
  if (comm == nullptr) return fail(ncclInvalidArgument, "ncclCommGetAsyncError : comm argument is NULL");
  if (asyncError == nullptr) return fail(ncclInvalidArgument, "ncclCommGetAsyncError : asyncError argument is NULL");
  CommState& c = *comm->state;
  if (c.phase != InitPhase::ready && c.phase != InitPhase::failed) progress_init(c);
  drive(c);
  std::string message;
  *asyncError = c.async_state(&message);
  if (*asyncError == ncclInProgress) return ncclSuccess;  // still joining
  c.call_in_progress = false;  // the emulator queued the last call before it returned: it has settled
  if (*asyncError != ncclSuccess) {
    tls_last_error = message;
    return ncclSuccess;
  }
  if (c.finalized && !c.queued_streams().empty()) *asyncError = ncclInProgress;
  return ncclSuccess;
}

ncclResult_t ncclCommFinalize(ncclComm_t comm) {
  if (comm == nullptr) return ncclSuccess;
  CommState& c = *comm->state;
  if (const ncclResult_t r = ensure_ready(c, "ncclCommFinalize"); r != ncclSuccess) return r;
  if (c.finalized) return fail(ncclInvalidArgument, "ncclCommFinalize: the communicator was already finalized");
  c.finalized = true;
  if (!c.blocking) return c.queued_streams().empty() ? ncclSuccess : ncclInProgress;
  // Blocking: until the queued collectives have completed (they give up after the timeout themselves).
  const auto start = Clock::now();
  for (drive(c); !c.queued_streams().empty() && Clock::now() - start < 2 * c.timeout; drive(c))
    std::this_thread::sleep_for(kInitPoll);
  std::string message;
  if (const ncclResult_t a = c.async_state(&message); a != ncclSuccess) return fail(a, "ncclCommFinalize: " + message);
  return c.queued_streams().empty() ? ncclSuccess
                                    : fail(ncclInternalError, "ncclCommFinalize: queued collectives did not complete");
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  if (comm == nullptr) return ncclSuccess;
  if (const ncclResult_t r = ensure_ready(*comm->state, "ncclCommDestroy"); r != ncclSuccess) return r;
  delete comm;  // queued collectives keep the state (and the mapping) until they complete
  return ncclSuccess;
}

ncclResult_t ncclCommAbort(ncclComm_t comm) {
  if (comm == nullptr) return ncclSuccess;
  CommState& c = *comm->state;
  c.aborted.store(true, std::memory_order_release);
  if (c.phase == InitPhase::ready) {
    c.segment->mark_failed(Failure::aborted, c.rank);
  } else if (c.phase != InitPhase::failed) {
    abandon_init(c, Failure::aborted);
  }
  delete comm;
  return ncclSuccess;
}

namespace {
/// ncclCommCount & co.: a ready communicator and a non-null result pointer.
ncclResult_t query_check(ncclComm_t comm, const void* out, const char* fn, const char* what) {
  if (comm == nullptr) return fail(ncclInvalidArgument, std::string(fn) + " : comm argument is NULL");
  if (out == nullptr) return fail(ncclInvalidArgument, std::string(fn) + " : " + what + " argument is NULL");
  return ensure_ready(*comm->state, fn);
}
}  // namespace

ncclResult_t ncclCommCount(const ncclComm_t comm, int* count) {
  if (const ncclResult_t r = query_check(comm, count, "CommCount", "count"); r != ncclSuccess) return r;
  *count = comm->state->nranks;
  return ncclSuccess;
}

ncclResult_t ncclCommCuDevice(const ncclComm_t comm, int* device) {
  if (const ncclResult_t r = query_check(comm, device, "CommCuDevice", "device"); r != ncclSuccess) return r;
  *device = comm->state->device;
  return ncclSuccess;
}

ncclResult_t ncclCommUserRank(const ncclComm_t comm, int* rank) {
  if (const ncclResult_t r = query_check(comm, rank, "CommUserRank", "rank"); r != ncclSuccess) return r;
  *rank = comm->state->rank;
  return ncclSuccess;
}

const char* ncclGetErrorString(ncclResult_t result) {
  switch (result) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error (see ncclGetLastError)";
    case ncclSystemError: return "unhandled system error (see ncclGetLastError)";
    case ncclInternalError: return "internal error (see ncclGetLastError)";
    case ncclInvalidArgument: return "invalid argument (see ncclGetLastError)";
    case ncclInvalidUsage: return "invalid usage (see ncclGetLastError)";
    case ncclRemoteError: return "remote process exited or there was a network error";
    case ncclInProgress: return "NCCL operation in progress";
    default: return "unknown result code";
  }
}

const char* ncclGetLastError(ncclComm_t) { return tls_last_error.c_str(); }

ncclResult_t ncclReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, ncclRedOp_t op,
                        int root, ncclComm_t comm, cudaStream_t stream) {
  return collective(comm, make_op(Kind::reduce, sendbuff, recvbuff, count, datatype, op, root, stream), "Reduce");
}

ncclResult_t ncclBcast(void* buff, size_t count, ncclDataType_t datatype, int root, ncclComm_t comm,
                       cudaStream_t stream) {
  return collective(comm, make_op(Kind::broadcast, buff, buff, count, datatype, ncclSum, root, stream), "Bcast");
}

ncclResult_t ncclBroadcast(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, int root,
                           ncclComm_t comm, cudaStream_t stream) {
  return collective(comm, make_op(Kind::broadcast, sendbuff, recvbuff, count, datatype, ncclSum, root, stream),
                    "Broadcast");
}

ncclResult_t ncclAllReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream) {
  return collective(comm, make_op(Kind::all_reduce, sendbuff, recvbuff, count, datatype, op, 0, stream), "AllReduce");
}

ncclResult_t ncclReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount, ncclDataType_t datatype,
                               ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream) {
  return collective(comm, make_op(Kind::reduce_scatter, sendbuff, recvbuff, recvcount, datatype, op, 0, stream),
                    "ReduceScatter");
}

ncclResult_t ncclAllGather(const void* sendbuff, void* recvbuff, size_t sendcount, ncclDataType_t datatype,
                           ncclComm_t comm, cudaStream_t stream) {
  return collective(comm, make_op(Kind::all_gather, sendbuff, recvbuff, sendcount, datatype, ncclSum, 0, stream),
                    "AllGather");
}

ncclResult_t ncclGroupStart() {
  ++tls_group.depth;
  return ncclSuccess;
}

ncclResult_t ncclGroupEnd() {
  if (tls_group.depth == 0) return fail(ncclInvalidUsage, "ncclGroupEnd: not in a group call.");
  if (--tls_group.depth > 0) return ncclSuccess;
  Group group = std::exchange(tls_group, Group{});
  if (group.error != ncclSuccess) return group.error;
  ncclResult_t result = ncclSuccess;
  for (auto& [c, op] : group.ops) {
    if (const ncclResult_t r = enqueue_op(c, op); r != ncclSuccess) return r;
    if (!c->blocking) c->call_in_progress = true, result = ncclInProgress;
  }
  return result;
}
