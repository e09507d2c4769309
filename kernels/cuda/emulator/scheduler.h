/// @file kernels/cuda/emulator/scheduler.h @brief What kernel code needs of the grid runner (scheduler.cpp): CUDA's built-in index variables, barriers and warp collectives, dynamic shared memory, running a grid.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <source_location>
#include <string>

#include "kernels/cuda/emulator/types.h"

// CUDA's built-in variables, per OS thread: a block runs on one OS thread, and the scheduler sets
// threadIdx before it resumes each fiber.
extern constinit thread_local uint3 threadIdx;
extern constinit thread_local uint3 blockIdx;
extern constinit thread_local dim3 blockDim;
extern constinit thread_local dim3 gridDim;
inline constexpr int warpSize = 32;

namespace ember::emu::detail {

enum class WarpOp : std::uint8_t { SyncWarp, ShflIdx, ShflUp, ShflDown, ShflXor, Ballot, Any, All };

/// __syncthreads and friends: waits until every thread of the block is at a barrier; returns how many passed pred != 0.
int barrier(int pred, const char* what, const std::source_location& loc);
/// A warp collective: checks the mask, waits for every lane in it, returns this lane's result bits.
std::uint64_t collective(WarpOp op, unsigned mask, std::uint64_t value, int arg, int width,
                         const std::source_location& loc);

/// True on a thread that is running a kernel (a launch from there would be dynamic parallelism).
bool in_kernel();
/// Why CUDA would refuse this launch configuration (cudaErrorInvalidConfiguration), or "" when valid.
std::string launch_config_error(dim3 grid, dim3 block, std::size_t shmem);
/// Runs every block of a valid configuration: invoke(args) is the kernel body of one CUDA thread.
/// Returns "" on success, else what went wrong (barrier/shuffle misuse, an exception; names block,
/// thread and source line). Grids from several host threads run one at a time.
std::string run_grid(dim3 grid, dim3 block, std::size_t shmem, void (*invoke)(const void*), const void* args);

/// The running block's dynamic shared memory (0xFF-filled at block start).
extern constinit thread_local std::byte* tls_dynamic_shared;
/// Counts the blocks this OS thread has started; EMBER_SHARED variables keep the count they last saw.
extern constinit thread_local std::uint64_t tls_block_serial;

/// What EMBER_SHARED does where a static shared variable is declared: 0xFF-fills its `bytes` at `p`
/// when no thread of the running block has passed here yet (`seen` is the variable's block count), so
/// every block finds it poisoned, as it finds dynamic shared memory.
inline void poison_static_shared(void* p, std::size_t bytes, std::uint64_t& seen) {
  if (seen == tls_block_serial) return;
  seen = tls_block_serial;
  std::memset(p, 0xFF, bytes);
}

}  // namespace ember::emu::detail

namespace ember::emu {

/// The block's dynamic shared memory (the launch's shmem bytes, 0xFF-filled when the block starts).
template <class T>
T* dynamic_shared() {
  return reinterpret_cast<T*>(detail::tls_dynamic_shared);
}

/// Number of OS threads that run blocks.
unsigned worker_count();
/// Fiber stacks still in use after their block finished (a leak; the tests check it stays 0).
long leaked_stacks();

}  // namespace ember::emu
