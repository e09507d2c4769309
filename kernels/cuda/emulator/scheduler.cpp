/// @file kernels/cuda/emulator/scheduler.cpp @brief Runs a grid on the CPU: blocks over a worker pool, each CUDA thread a Boost.Context fiber, checked barriers and warp collectives.
#include "kernels/cuda/emulator/scheduler.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <boost/context/fiber.hpp>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <new>
#include <numeric>
#include <thread>
#include <vector>

#include "kernels/cuda/emulator/internal.h"
#include "kernels/cuda/emulator/runtime.h"

// AddressSanitizer tracks which stack a thread runs on (to unpoison the frames an exception unwinds,
// and for its fake stacks); every switch between a fiber stack and the scheduler's is announced to it.
#if defined(__SANITIZE_ADDRESS__)
#define EMBER_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EMBER_EMU_ASAN 1
#endif
#endif
#ifdef EMBER_EMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

constinit thread_local uint3 threadIdx{};
constinit thread_local uint3 blockIdx{};
constinit thread_local dim3 blockDim{};
constinit thread_local dim3 gridDim{};

namespace ember::emu::detail {

constinit thread_local std::byte* tls_dynamic_shared = nullptr;
constinit thread_local std::uint64_t tls_block_serial = 0;

enum class State : std::uint8_t { NotStarted, Ready, Running, Barrier, Warp, Done };
const char* op_name(WarpOp op) {
  static constexpr const char* names[] = {"__syncwarp",      "__shfl_sync",   "__shfl_up_sync", "__shfl_down_sync",
                                          "__shfl_xor_sync", "__ballot_sync", "__any_sync",     "__all_sync"};
  return names[static_cast<int>(op)];
}

struct Abandon {};  // thrown inside a fiber to unwind it when its block is abandoned

/// A stack's lowest address and size (for the AddressSanitizer annotations; unused otherwise).
struct StackBounds {
  const void* bottom = nullptr;
  std::size_t size = 0;
};
/// Announces a switch to the stack `to` (fake: where ASan saves this stack's fake-stack state, or
/// nullptr when the current fiber is leaving for good); no-op without ASan.
void asan_start_switch(void** fake, const StackBounds& to) {
#ifdef EMBER_EMU_ASAN
  __sanitizer_start_switch_fiber(fake, to.bottom, to.size);
#else
  (void)fake, (void)to;
#endif
}
/// Completes a switch on the new stack; `from` receives the bounds of the stack that was left.
void asan_finish_switch(void* fake, StackBounds* from) {
#ifdef EMBER_EMU_ASAN
  __sanitizer_finish_switch_fiber(fake, from ? &from->bottom : nullptr, from ? &from->size : nullptr);
#else
  (void)fake, (void)from;
#endif
}

/// One CUDA thread: its fiber and, while it waits, what it waits in.
struct Thread {
  boost::context::fiber self;  // the fiber suspended in this thread's code, if any
  StackBounds stack;           // the stack `self` runs on
  uint3 idx{};
  unsigned linear = 0, mask = 0;
  State state = State::NotStarted;
  WarpOp op = WarpOp::SyncWarp;
  int arg = 0, width = 32;
  std::uint64_t value = 0, result = 0;  // operand and result bits of the barrier or warp collective
  const char* what = "";
  std::source_location loc;
};

struct Launch {
  dim3 grid, block;
  std::size_t shmem = 0, stack_bytes = 0;
  void (*invoke)(const void*) = nullptr;
  const void* args = nullptr;
  Schedule schedule;
  std::uint64_t id = 0, nblocks = 0, mul = 1, add = 0;  // random block order: (mul * i + add) % nblocks
  std::atomic<std::uint64_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex m;
  std::string error;
  void report(std::string msg) {
    std::lock_guard lock(m);
    if (error.empty()) error = std::move(msg);
    failed = true;
  }
};

/// The block an OS thread runs. Threads run warp by warp: a *sweep* resumes each runnable lane of one
/// warp once (in the schedule's lane order), then the schedule picks the next warp with runnable lanes.
struct Block {
  Launch* launch = nullptr;
  boost::context::fiber sched;  // the scheduler, while a fiber runs
  StackBounds sched_stack;      // the OS thread's stack, on which the scheduler runs
  unsigned n = 0, warps = 0;
  std::vector<Thread> threads;
  std::vector<int> runnable;  // per warp: lanes that are Ready or NotStarted
  std::vector<int> waiting;   // per warp: lanes waiting in a warp collective
  std::array<unsigned, 32> sweep{};  // thread ids of this sweep, in order
  unsigned sweep_len = 0, cursor = 0;  // cursor: position in `sweep`
  std::uint64_t rng = 0;               // random schedule: picks warps and shuffles lanes
  std::string error;
  bool aborted = false;
};

inline thread_local Block* tls_block = nullptr;
inline thread_local Thread* tls_thread = nullptr;
struct SharedBuffer {  // dynamic shared memory of the block this OS thread runs
  std::byte* p = nullptr;
  std::size_t cap = 0;
  ~SharedBuffer() { std::free(p); }
};
thread_local SharedBuffer tls_shared;

std::string fmt(uint3 v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "(%u,%u,%u)", v.x, v.y, v.z);
  return buf;
}
std::string fmt(const std::source_location& l) {
  return std::string(l.file_name()) + ":" + std::to_string(l.line());
}
std::string hex(unsigned m) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", m);
  return buf;
}
std::string who(const Thread& t) { return "thread " + fmt(t.idx) + " of block " + fmt(blockIdx); }
std::uint64_t mix(std::uint64_t x) {  // splitmix64
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// ---- fiber stacks: mmap'd with a guard page, cached per OS thread and reused -------------------------
std::size_t page_size() {
  static const std::size_t p = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return p;
}
struct StackCache {
  std::vector<boost::context::stack_context> free;
  long in_use = 0;
  static void unmap(const boost::context::stack_context& s) {
#ifdef EMBER_EMU_ASAN  // frames left poisoned on this stack must not poison whatever is mapped here next
    __asan_unpoison_memory_region(static_cast<char*>(s.sp) - s.size, s.size);
#endif
    munmap(static_cast<char*>(s.sp) - s.size - page_size(), s.size + page_size());
  }
  ~StackCache() {
    for (const auto& s : free) unmap(s);
  }
};
inline thread_local StackCache tls_stacks;
inline thread_local StackBounds tls_new_stack;  // the stack PooledStack handed out last
/// Stacks still in use after their block finished (a leak; the tests check it stays 0).
std::atomic<long> leaked_stack_count{0};

struct PooledStack {
  std::size_t bytes;
  boost::context::stack_context allocate() {
    const std::size_t size = (bytes + page_size() - 1) / page_size() * page_size();
    boost::context::stack_context s{};
    for (auto& cache = tls_stacks.free; !cache.empty();) {
      s = cache.back();
      cache.pop_back();
      if (s.size == size) return ++tls_stacks.in_use, tls_new_stack = {static_cast<char*>(s.sp) - s.size, s.size}, s;
      StackCache::unmap(s);
    }
    void* base = mmap(nullptr, size + page_size(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) throw std::bad_alloc();
    mprotect(base, page_size(), PROT_NONE);  // a stack overflow faults instead of corrupting a neighbour
    s.size = size;
    s.sp = static_cast<char*>(base) + page_size() + size;
    tls_new_stack = {static_cast<char*>(base) + page_size(), size};
    return ++tls_stacks.in_use, s;
  }
  void deallocate(boost::context::stack_context& s) noexcept {
    --tls_stacks.in_use;
    tls_stacks.free.push_back(s);
  }
};

// ---- thread states and the warp-by-warp order -----------------------------------------------------
static bool runnable(State s) { return s == State::Ready || s == State::NotStarted; }

/// Moves t to state s, keeping the per-warp counts of runnable and waiting lanes.
static void set_state(Block& b, Thread& t, State s) {
  const unsigned w = t.linear / 32;
  b.runnable[w] += static_cast<int>(runnable(s)) - static_cast<int>(runnable(t.state));
  b.waiting[w] += static_cast<int>(s == State::Warp) - static_cast<int>(t.state == State::Warp);
  t.state = s;
}

/// The warp to sweep next, or -1 when no lane of the block is runnable: the lowest such warp under
/// `forward`, the highest under `reverse`, one drawn from the block's seed under `random`.
static int pick_warp(Block& b) {
  const Schedule::Order order = b.launch->schedule.order;
  const int warps = static_cast<int>(b.warps);
  if (order == Schedule::Order::forward) {
    for (int w = 0; w < warps; ++w)
      if (b.runnable[w] > 0) return w;
    return -1;
  }
  if (order == Schedule::Order::reverse) {
    for (int w = warps - 1; w >= 0; --w)
      if (b.runnable[w] > 0) return w;
    return -1;
  }
  int candidates = 0;
  for (int w = 0; w < warps; ++w) candidates += b.runnable[w] > 0;
  if (candidates == 0) return -1;
  int k = static_cast<int>((b.rng = mix(b.rng)) % static_cast<unsigned>(candidates));
  for (int w = 0; w < warps; ++w)
    if (b.runnable[w] > 0 && k-- == 0) return w;
  return -1;
}

/// Starts a sweep over the lanes of the next warp (ascending, descending or shuffled by the schedule);
/// false when no thread of the block is runnable.
static bool next_sweep(Block& b) {
  const int w = pick_warp(b);
  if (w < 0) return false;
  const Schedule::Order order = b.launch->schedule.order;
  const unsigned base = static_cast<unsigned>(w) * 32, lanes = std::min(32u, b.n - base);
  for (unsigned l = 0; l < lanes; ++l) b.sweep[l] = base + (order == Schedule::Order::reverse ? lanes - 1 - l : l);
  if (order == Schedule::Order::random)
    for (unsigned l = lanes - 1; l > 0; --l) std::swap(b.sweep[l], b.sweep[(b.rng = mix(b.rng)) % (l + 1)]);
  b.sweep_len = lanes;
  b.cursor = 0;
  return true;
}

/// The thread the schedule runs next (at b.cursor, which it does not advance), starting sweeps over
/// further warps as needed; nullptr when no thread of the block is runnable.
static Thread* next_runnable(Block& b) {
  for (;;) {
    for (; b.cursor < b.sweep_len; ++b.cursor)
      if (runnable(b.threads[b.sweep[b.cursor]].state)) return &b.threads[b.sweep[b.cursor]];
    if (!next_sweep(b)) return nullptr;
  }
}

// ---- warp collectives ---------------------------------------------------------------------------------
/// PTX ISA shfl.sync: the source lane of `lane`, with c = ((32 - width) << 8) | clamp as CUDA's headers pass it.
static unsigned shfl_source(WarpOp op, unsigned lane, int b, int width) {
  const unsigned seg = static_cast<unsigned>(32 - width);  // segment mask c[12:8]
  const unsigned clamp = op == WarpOp::ShflUp ? 0u : 31u;  // c[4:0]
  const unsigned bval = static_cast<unsigned>(b) & 31u;    // b[4:0]
  const int max_lane = static_cast<int>((lane & seg) | (clamp & ~seg & 31u));
  int j = static_cast<int>((lane & seg) | (bval & ~seg));  // idx
  if (op == WarpOp::ShflUp) j = static_cast<int>(lane) - static_cast<int>(bval);
  if (op == WarpOp::ShflDown) j = static_cast<int>(lane + bval);
  if (op == WarpOp::ShflXor) j = static_cast<int>(lane ^ bval);
  const bool valid = op == WarpOp::ShflUp ? j >= max_lane : j <= max_lane;
  return valid ? static_cast<unsigned>(j) : lane;
}

/// Computes every lane's result of a complete collective and makes the lanes runnable.
static void complete(Block& b, unsigned base, unsigned mask, WarpOp op) {
  Thread* w = &b.threads[base];
  unsigned ballot = 0;
  for (unsigned l = 0; l < 32; ++l)
    if (((mask >> l) & 1u) != 0 && w[l].value != 0) ballot |= 1u << l;
  for (unsigned l = 0; l < 32; ++l) {
    if (((mask >> l) & 1u) == 0) continue;
    Thread& t = w[l];
    if (op == WarpOp::Ballot)
      t.result = ballot;
    else if (op == WarpOp::Any)
      t.result = ballot != 0;
    else if (op == WarpOp::All)
      t.result = ballot == mask;
    else if (op != WarpOp::SyncWarp) {  // reading a lane outside the mask is undefined in CUDA: all-ones bits (NaN)
      const unsigned src = shfl_source(op, l, t.arg, t.width);
      t.result = ((mask >> src) & 1u) != 0 ? w[src].value : ~std::uint64_t{0};
    }
    set_state(b, t, State::Ready);
  }
}

/// Completes the collective t has just arrived in when every lane of its mask waits in the same kind
/// with the same mask; t, the last to arrive, goes on running. False (nothing changes) otherwise.
static bool try_complete(Block& b, unsigned base, Thread& t) {
  for (unsigned j = 0; j < 32; ++j) {
    if (((t.mask >> j) & 1u) == 0) continue;
    const Thread& u = b.threads[base + j];
    if (u.state != State::Warp || u.op != t.op || u.mask != t.mask) return false;
  }
  complete(b, base, t.mask, t.op);
  set_state(b, t, State::Running);
  return true;
}

// ---- inside a fiber ---------------------------------------------------------------------------------
/// Runs the kernel for tls_thread, then, without a switch, for each thread the schedule runs next as
/// long as that thread has not started yet: a kernel without barriers or shuffles runs a whole block
/// in one fiber.
boost::context::fiber fiber_main(boost::context::fiber&& sched) {
  Block& b = *tls_block;
  asan_finish_switch(nullptr, &b.sched_stack);
  b.sched = std::move(sched);
  for (Thread* t = tls_thread;;) {
    try {
      b.launch->invoke(b.launch->args);
    } catch (const Abandon&) {
    } catch (const boost::context::detail::forced_unwind&) {
      throw;  // Boost.Context unwinding a fiber's stack: let it through
    } catch (const std::exception& e) {
      if (b.error.empty()) b.error = who(*t) + " threw: " + e.what();
    } catch (...) {
      if (b.error.empty()) b.error = who(*t) + " threw an exception";
    }
    set_state(b, *t, State::Done);
    if (!b.error.empty() || b.aborted) break;
    Thread* next = next_runnable(b);
    if (next == nullptr || next->state != State::NotStarted) break;  // a suspended thread: the scheduler resumes it
    ++b.cursor;
    tls_thread = t = next;
    threadIdx = t->idx;
    set_state(b, *t, State::Running);
  }
  asan_start_switch(nullptr, b.sched_stack);  // this fiber ends: its stack goes back to the pool
  return std::move(b.sched);
}

void suspend() {
  Block& b = *tls_block;
  void* fake = nullptr;
  asan_start_switch(&fake, b.sched_stack);
  b.sched = std::move(b.sched).resume();
  asan_finish_switch(fake, &b.sched_stack);
  if (b.aborted) throw Abandon{};
}

/// Scheduler side: resumes fiber f, which runs on stack s, until it suspends or ends; returns the
/// suspended fiber (on the same stack) or an empty one.
boost::context::fiber switch_into(boost::context::fiber&& f, const StackBounds& s) {
  void* fake = nullptr;
  asan_start_switch(&fake, s);
  boost::context::fiber back = std::move(f).resume();
  asan_finish_switch(fake, nullptr);
  return back;
}

/// Records a misuse as the block's error and unwinds the calling thread.
[[noreturn]] inline void raise(std::string msg) {
  if (tls_block->error.empty()) tls_block->error = std::move(msg);
  throw Abandon{};
}

/// __syncthreads and friends: waits until every thread of the block is at a barrier; returns how many passed pred != 0.
int barrier(int pred, const char* what, const std::source_location& loc) {
  Thread* t = tls_thread;
  if (t == nullptr) return pred != 0;  // host code: a block of one thread
  if (tls_block->aborted) return 0;    // a destructor running while the block is abandoned
  set_state(*tls_block, *t, State::Barrier);
  t->mask = 0;
  t->value = pred != 0;
  t->what = what;
  t->loc = loc;
  suspend();
  return static_cast<int>(t->result);
}

/// A warp collective: checks the mask, waits for every lane in it (the last to arrive completes it and
/// goes on without a switch), returns this lane's result bits.
std::uint64_t collective(WarpOp op, unsigned mask, std::uint64_t value, int arg, int width,
                                const std::source_location& loc) {
  Thread* t = tls_thread;
  if (t == nullptr) return op >= WarpOp::Ballot ? (value != 0) : value;  // host code: one lane
  Block& b = *tls_block;
  if (b.aborted) return 0;
  const unsigned lane = t->linear % 32, warp = t->linear / 32, lanes = std::min(32u, b.n - warp * 32);
  auto where = [&] {
    return std::string(op_name(op)) + " at " + fmt(loc) + ": " + who(*t) + " (warp " + std::to_string(warp) +
           ", lane " + std::to_string(lane) + ")";
  };
  if (width < 1 || width > 32 || (width & (width - 1)) != 0)
    raise(where() + " passes width " + std::to_string(width) + " (must be a power of 2 up to 32)");
  if (((mask >> lane) & 1u) == 0) raise(where() + " is not in its mask " + hex(mask));
  if (lanes < 32 && (mask >> lanes) != 0)
    raise(where() + " passes mask " + hex(mask) + " but warp " + std::to_string(warp) + " has only " +
          std::to_string(lanes) + " lanes (blockDim " + fmt(blockDim) + "): lanes " + std::to_string(lanes) +
          "..31 do not exist");
  t->op = op;
  t->mask = mask;
  t->value = value;
  t->arg = arg;
  t->width = width;
  t->what = op_name(op);
  t->loc = loc;
  set_state(b, *t, State::Warp);
  if (b.waiting[warp] < std::popcount(mask) || !try_complete(b, warp * 32, *t)) suspend();
  return t->result;
}

// ---- the scheduler side -----------------------------------------------------------------------------
bool same_place(const Thread& a, const Thread& b) {
  return a.loc.line() == b.loc.line() && a.loc.column() == b.loc.column() &&
         (a.loc.file_name() == b.loc.file_name() || std::strcmp(a.loc.file_name(), b.loc.file_name()) == 0);
}

std::string deadlock_message(const Block& b) {
  std::vector<std::pair<const Thread*, unsigned>> groups;  // first thread waiting at a place, how many
  unsigned exited = 0;
  for (const Thread& t : b.threads) {
    exited += t.state == State::Done;
    if (t.state != State::Barrier && t.state != State::Warp) continue;
    auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) {
      return g.first->what == t.what && g.first->mask == t.mask && same_place(*g.first, t);
    });
    if (it != groups.end())
      ++it->second;
    else
      groups.emplace_back(&t, 1);
  }
  std::string msg = "deadlock in block " + fmt(blockIdx) + ":";
  for (std::size_t g = 0; g < groups.size() && g < 4; ++g) {
    const Thread& t = *groups[g].first;
    const unsigned more = groups[g].second - 1;
    msg += std::string(g ? ";" : "") + " thread " + fmt(t.idx) +
           (more ? " and " + std::to_string(more) + " more wait" : " waits") + " in " + t.what +
           (t.state == State::Warp ? "(mask " + hex(t.mask) + ")" : "") + " at " + fmt(t.loc);
  }
  return exited ? msg + "; " + std::to_string(exited) + " threads exited" : msg;
}

/// Called when no thread of the block is runnable (a collective completes as its last lane arrives):
/// releases a barrier that every thread waits at, or diagnoses why the block cannot go on. Returns
/// true when every thread of the block has finished.
bool resolve(Block& b) {
  auto& th = b.threads;
  const bool collectives = std::any_of(b.waiting.begin(), b.waiting.end(), [](int w) { return w > 0; });
  for (const Thread& t : th) {  // lanes waiting in a collective for a lane that exited
    if (!collectives) break;
    if (t.state != State::Warp) continue;
    const unsigned base = t.linear / 32 * 32;
    for (unsigned j = 0; j < 32; ++j)
      if (((t.mask >> j) & 1u) != 0 && th[base + j].state == State::Done) {
        b.error = who(th[base + j]) + " exited while lanes of warp " + std::to_string(base / 32) + " wait for it in " +
                  t.what + "(mask " + hex(t.mask) + ") at " + fmt(t.loc);
        return false;
      }
  }
  unsigned done = 0, waiting = 0;
  const Thread *first_done = nullptr, *first_wait = nullptr;
  for (const Thread& t : th) {
    if (t.state == State::Done && done++ == 0) first_done = &t;
    if (t.state == State::Barrier && waiting++ == 0) first_wait = &t;
  }
  if (done == b.n) return true;
  if (waiting != b.n - done) return b.error = deadlock_message(b), false;
  if (done != 0) {
    b.error = who(*first_done) + " exited while " + std::to_string(waiting) + " threads wait at barrier " +
              first_wait->what + " at " + fmt(first_wait->loc);
    return false;
  }
  std::uint64_t count = 0;
  for (const Thread& t : th) {
    if (!same_place(t, *first_wait)) {
      b.error = "divergent barrier in block " + fmt(blockIdx) + ": thread " + fmt(first_wait->idx) + " waits in " +
                first_wait->what + " at " + fmt(first_wait->loc) + " but thread " + fmt(t.idx) + " in " + t.what +
                " at " + fmt(t.loc);
      return false;
    }
    count += t.value;
  }
  for (Thread& t : th) t.result = count, set_state(b, t, State::Ready);
  return false;
}

/// Resumes (or starts) thread t; on return the fiber has run to a wait, or ended because the next
/// thread to run has a fiber of its own or no thread is runnable.
void resume(Block& b, Thread& t) {
  tls_thread = &t;
  threadIdx = t.idx;
  boost::context::fiber f = std::move(t.self);
  StackBounds stack = t.stack;
  try {
    if (t.state == State::NotStarted) {
      f = boost::context::fiber(std::allocator_arg, PooledStack{b.launch->stack_bytes}, fiber_main);
      stack = tls_new_stack;
    }
  } catch (const std::exception& e) {
    b.error = "cannot create a fiber for " + who(t) + ": " + e.what();
    tls_thread = nullptr;
    return;
  }
  set_state(b, t, State::Running);
  f = switch_into(std::move(f), stack);
  if (f) {  // the thread that suspended (the fiber may have moved on to later threads)
    tls_thread->self = std::move(f);
    tls_thread->stack = stack;
  }
  tls_thread = nullptr;
}

void run_block(Launch& L, std::uint64_t linear) {
  static thread_local Block b;
  blockIdx = {static_cast<unsigned>(linear % L.grid.x), static_cast<unsigned>(linear / L.grid.x % L.grid.y),
              static_cast<unsigned>(linear / L.grid.x / L.grid.y)};
  blockDim = L.block;
  gridDim = L.grid;
  if (tls_shared.p == nullptr || tls_shared.cap < L.shmem) {
    std::free(tls_shared.p);
    tls_shared.cap = std::max<std::size_t>(256, (L.shmem + 255) / 256 * 256);
    if ((tls_shared.p = static_cast<std::byte*>(std::aligned_alloc(256, tls_shared.cap))) == nullptr)
      throw std::bad_alloc();
  }
  std::memset(tls_shared.p, 0xFF, L.shmem);
  tls_dynamic_shared = tls_shared.p;
  b.launch = &L;
  b.n = L.block.x * L.block.y * L.block.z;
  b.error.clear();
  b.aborted = false;
  b.threads.resize(b.n);
  for (unsigned i = 0; i < b.n; ++i) {
    b.threads[i].state = State::NotStarted;
    b.threads[i].linear = i;
    b.threads[i].idx = {i % L.block.x, i / L.block.x % L.block.y, i / L.block.x / L.block.y};
  }
  b.warps = (b.n + 31) / 32;
  b.runnable.assign(b.warps, 32);
  b.runnable[b.warps - 1] = static_cast<int>(b.n - (b.warps - 1) * 32);
  b.waiting.assign(b.warps, 0);
  b.sweep_len = b.cursor = 0;
  b.rng = mix(L.schedule.seed ^ mix(L.id ^ mix(linear)));
  ++tls_block_serial;  // EMBER_SHARED variables see a new block
  tls_block = &b;
  while (b.error.empty()) {
    if (Thread* t = next_runnable(b)) {
      ++b.cursor;
      resume(b, *t);
    } else if (resolve(b)) {
      break;
    }
  }
  if (!b.error.empty()) {  // abandon the block: resume every suspended fiber, suspend() throws Abandon in it
    b.aborted = true;
    for (Thread& t : b.threads) {
      tls_thread = &t;
      threadIdx = t.idx;
      while (t.self) {
        const StackBounds stack = t.stack;
        if (auto f = switch_into(std::move(t.self), stack)) tls_thread->self = std::move(f), tls_thread->stack = stack;
      }
    }
    tls_thread = nullptr;
    L.report(b.error);
  }
  if (tls_stacks.in_use != 0) leaked_stack_count += std::exchange(tls_stacks.in_use, 0);
  tls_block = nullptr;
}

/// Worker threads (hardware_concurrency or EMBER_EMU_THREADS, the launching thread included).
class Pool {
 public:
  explicit Pool(unsigned n) {
    for (unsigned i = 1; i < n; ++i) workers_.emplace_back([this] { loop(); });
  }
  ~Pool() {
    std::unique_lock lock(m_);
    stop_ = true;
    lock.unlock();
    wake_.notify_all();
    for (auto& w : workers_) w.join();
  }
  unsigned size() const { return static_cast<unsigned>(workers_.size()) + 1; }
  void run(const std::function<void()>& job, std::uint64_t tasks) {
    if (workers_.empty() || tasks < 2) return job();
    std::unique_lock lock(m_);
    job_ = &job, ++generation_, busy_ = workers_.size();
    lock.unlock();
    wake_.notify_all();
    job();
    lock.lock();
    done_.wait(lock, [&] { return busy_ == 0; });
  }

 private:
  void loop() {
    std::unique_lock lock(m_);
    for (std::uint64_t seen = 0;; seen = generation_) {
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      lock.unlock();
      (*job_)();  // job_ stays valid until busy_ drops to 0
      lock.lock();
      if (--busy_ == 0) done_.notify_one();
    }
  }
  std::vector<std::thread> workers_;
  std::mutex m_;
  std::condition_variable wake_, done_;
  const std::function<void()>* job_ = nullptr;
  std::uint64_t generation_ = 0;
  std::size_t busy_ = 0;
  bool stop_ = false;
};
Pool& pool() {
  static Pool p(
      static_cast<unsigned>(env_size("EMBER_EMU_THREADS", std::max(1u, std::thread::hardware_concurrency()))));
  return p;
}

std::uint64_t block_at(const Launch& L, std::uint64_t i) {
  if (L.schedule.order == Schedule::Order::forward) return i;
  if (L.schedule.order == Schedule::Order::reverse) return L.nblocks - 1 - i;
  return static_cast<std::uint64_t>((static_cast<unsigned __int128>(L.mul) * i + L.add) % L.nblocks);
}

std::string launch_config_error(dim3 grid, dim3 block, std::size_t shmem) {
  const std::uint64_t threads = std::uint64_t{block.x} * block.y * block.z;
  std::string bad;
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || threads == 0)
    bad = "a dimension is zero";
  else if (threads > 1024)
    bad = std::to_string(threads) + " threads per block (at most 1024)";
  else if (block.z > 64)
    bad = "block dimensions exceed (1024,1024,64)";
  else if (grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535)
    bad = "grid dimensions exceed (2^31-1,65535,65535)";
  else if (shmem > kMaxDynamicShared)
    bad = std::to_string(shmem) + " bytes of dynamic shared memory (at most 228 KiB)";
  return bad.empty() ? bad : "launch with grid " + fmt(grid) + ", block " + fmt(block) + ": " + bad;
}

std::string run_grid(dim3 grid, dim3 block, std::size_t shmem, void (*invoke)(const void*), const void* args) {
  static std::atomic<std::uint64_t> launches{0};
  Launch L;
  L.grid = grid, L.block = block, L.shmem = shmem, L.invoke = invoke, L.args = args;
  L.schedule = schedule();
  L.stack_bytes = stack_size();
  L.id = ++launches;
  L.nblocks = std::uint64_t{grid.x} * grid.y * grid.z;
  if (L.schedule.order == Schedule::Order::random) {
    for (L.mul = (mix(L.schedule.seed ^ mix(L.id)) % L.nblocks) | 1u; std::gcd(L.mul, L.nblocks) != 1;) L.mul += 2;
    L.add = mix(L.mul ^ L.schedule.seed) % L.nblocks;
  }
  const std::function<void()> job = [&L] {
    try {
      for (std::uint64_t i; !L.failed.load(std::memory_order_relaxed) && (i = L.next++) < L.nblocks;)
        run_block(L, block_at(L, i));
    } catch (const std::exception& e) { L.report(std::string("emulator: ") + e.what()); }
  };
  static std::mutex serial;  // grids from several host threads run one at a time
  {
    std::lock_guard lock(serial);
    pool().run(job, L.nblocks);
  }
  return L.failed ? L.error : std::string();
}

bool in_kernel() { return tls_block != nullptr; }

}  // namespace ember::emu::detail

namespace ember::emu {
unsigned worker_count() { return detail::pool().size(); }
long leaked_stacks() { return detail::leaked_stack_count.load(); }
}  // namespace ember::emu
