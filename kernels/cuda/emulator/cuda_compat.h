/// @file kernels/cuda/emulator/cuda_compat.h @brief The one include of every .cu kernel file: real CUDA under nvcc, the CPU kernel emulator under g++.
#pragma once
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "kernels/runtime_stats.h"

#ifdef __CUDACC__
#include <cuda_runtime.h>

/// Dynamic shared memory of the launch, as `type* name` (one aligned byte array shared by all kernels,
/// so kernels with different element types do not clash).
#define EMBER_DYNAMIC_SHARED(type, name)                                       \
  extern __shared__ __align__(16) unsigned char ember_dynamic_shared_bytes_[]; \
  type* name = reinterpret_cast<type*>(ember_dynamic_shared_bytes_)

/// A static shared variable `name` of `type` (an array type too: EMBER_SHARED(float[256], sums)), as a
/// statement in a kernel or device function body.
#define EMBER_SHARED(type, name) __shared__ ::std::type_identity_t<type> name

namespace ember::cuda {
/// kernel<<<grid, block, shmem_bytes, stream>>>(args...); check with cudaGetLastError().
template <class... P, class... A>
void launch(void (*kernel)(P...), dim3 grid, dim3 block, std::size_t shmem_bytes, cudaStream_t stream, A&&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "launch: argument count differs from the kernel's parameter count");
  ::ember::kernels::count_kernel_launch(::ember::DeviceType::CUDA);
  kernel<<<grid, block, shmem_bytes, stream>>>(std::forward<A>(args)...);
}
}  // namespace ember::cuda

#else  // g++: the kernel emulator (see docs/emulator.md)
#include "kernels/cuda/emulator/types.h"
#include "kernels/cuda/emulator/runtime.h"
#include "kernels/cuda/emulator/scheduler.h"
#include "kernels/cuda/emulator/launch.h"
#include "kernels/cuda/emulator/intrinsics.h"

#define EMBER_DYNAMIC_SHARED(type, name) type* name = ::ember::emu::dynamic_shared<type>()
// Static shared memory is per OS thread (a block runs on one); 0xFF-filled for every block.
#define EMBER_SHARED(type, name)                                 \
  static thread_local ::std::type_identity_t<type> name;         \
  static thread_local ::std::uint64_t name##_ember_block_ = 0;   \
  ::ember::emu::detail::poison_static_shared(&name, sizeof(name), name##_ember_block_)

namespace ember::cuda {
/// Queues the grid on `stream` (it runs on the CPU when the stream executes; see StreamMode); launch
/// configuration errors are returned by the next cudaGetLastError(), faults of the running kernel
/// (barrier/shuffle misuse, foreign pointers) become the device's sticky error.
template <class... P, class... A>
void launch(void (*kernel)(P...), dim3 grid, dim3 block, std::size_t shmem_bytes, cudaStream_t stream, A&&... args) {
  ::ember::kernels::count_kernel_launch(::ember::DeviceType::CUDA);
  ::ember::emu::launch(kernel, grid, block, shmem_bytes, stream, std::forward<A>(args)...);
}
}  // namespace ember::cuda
#endif
