/// @file kernels/cuda/emulator/launch.h @brief ember::emu::launch: kernel<<<grid, block, shmem, stream>>>(args...) in the emulated build: arguments converted and copied at the call, the grid queued on the stream (runtime.cpp) and run by the scheduler.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

#include "kernels/cuda/emulator/scheduler.h"
#include "kernels/cuda/emulator/types.h"

namespace ember::emu::detail {

/// A launch's kernel with its arguments, copied at the launch (as CUDA copies them), run later.
class KernelCall {
 public:
  virtual ~KernelCall() = default;
  /// Runs the kernel body for the current emulated thread.
  virtual void invoke() const = 0;
  /// Calls f(address, argument index) for every value among the arguments that may be a pointer: each
  /// pointer argument, and each 8-byte-aligned word of a by-value struct without padding (pointers inside
  /// structs; see visit_addresses).
  virtual void for_each_address(void (*f)(const void* address, int index, void* ctx), void* ctx) const = 0;
};

/// Validates the launch and queues it on `stream` (runtime.cpp); errors become the last error.
void launch_kernel(dim3 grid, dim3 block, std::size_t shmem, cudaStream_t stream, std::shared_ptr<const KernelCall> call);

template <class T>
T as_param(T v) {  // implicit conversion to the kernel's parameter type, as a CUDA launch does
  return v;
}

template <class T>
void visit_addresses(const T& v, int index, void (*f)(const void*, int, void*), void* ctx) {
  if constexpr (std::is_pointer_v<T>) {
    f(reinterpret_cast<const void*>(v), index, ctx);
  } else if constexpr (std::is_class_v<T> && sizeof(T) >= sizeof(void*) && std::has_unique_object_representations_v<T>) {
    // Only a struct whose every byte belongs to a member: padding bytes are indeterminate (often stale
    // pointer bits from the caller's stack), and a word mixing them with, say, two bools could look like
    // an address of another device's memory and fault a correct launch. Structs with floating-point
    // members or padding are therefore not scanned (a foreign pointer in one goes unnoticed here).
    for (std::size_t off = 0; off + sizeof(void*) <= sizeof(T); off += alignof(void*)) {
      std::uintptr_t word = 0;
      std::memcpy(&word, reinterpret_cast<const unsigned char*>(&v) + off, sizeof word);
      f(reinterpret_cast<const void*>(word), index, ctx);
    }
  }
}

template <class... P>
class KernelCallOf final : public KernelCall {
 public:
  template <class... A>
  explicit KernelCallOf(void (*kernel)(P...), A&&... args)
      : kernel_(kernel), params_{as_param<std::decay_t<P>>(std::forward<A>(args))...} {}
  void invoke() const override { std::apply(kernel_, params_); }
  void for_each_address(void (*f)(const void*, int, void*), void* ctx) const override {
    int index = 0;
    std::apply([&](const auto&... p) { (visit_addresses(p, index++, f, ctx), ...); }, params_);
  }

 private:
  void (*kernel_)(P...);
  std::tuple<std::decay_t<P>...> params_;
};

}  // namespace ember::emu::detail

namespace ember::emu {

/// kernel<<<grid, block, shmem_bytes, stream>>>(args...): the arguments are converted to the kernel's
/// parameter types and copied now; the grid runs when the stream executes it (see StreamMode).
template <class... P, class... A>
void launch(void (*kernel)(P...), dim3 grid, dim3 block, std::size_t shmem_bytes, cudaStream_t stream, A&&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "launch: argument count differs from the kernel's parameter count");
  detail::launch_kernel(grid, block, shmem_bytes, stream,
                        std::make_shared<const detail::KernelCallOf<P...>>(kernel, std::forward<A>(args)...));
}

}  // namespace ember::emu
