/// @file kernels/cuda/emulator/intrinsics.h @brief Emulated device functions: barriers, warp shuffles and votes, atomics, fast math, bit tricks.
#pragma once
#include <math.h>  // the C math functions kernels call unqualified (expf, fmaf, ...), in the global namespace

#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <source_location>
#include <type_traits>

#include "kernels/cuda/emulator/scheduler.h"

namespace ember::emu::detail {
template <class T>
concept WarpValue = std::is_trivially_copyable_v<T> && sizeof(T) <= 8;
template <class T>
std::uint64_t to_bits(T v) {
  std::uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  return bits;
}
template <class T>
T from_bits(std::uint64_t bits) {
  T v;
  std::memcpy(&v, &bits, sizeof(T));
  return v;
}
/// Read-modify-write by compare-and-swap (CUDA atomics are relaxed; blocks run in parallel).
template <class T, class F>
T atomic_update(T* p, F f) {
  std::atomic_ref<T> a(*p);
  T old = a.load(std::memory_order_relaxed);
  while (!a.compare_exchange_weak(old, f(old), std::memory_order_relaxed)) {}
  return old;
}
}  // namespace ember::emu::detail

// ---- barriers ---------------------------------------------------------------------------------------
inline void __syncthreads(std::source_location loc = std::source_location::current()) {
  ember::emu::detail::barrier(0, "__syncthreads()", loc);
}
inline int __syncthreads_count(int pred, std::source_location loc = std::source_location::current()) {
  return ember::emu::detail::barrier(pred, "__syncthreads_count()", loc);
}
inline int __syncthreads_and(int pred, std::source_location loc = std::source_location::current()) {
  return ember::emu::detail::barrier(pred, "__syncthreads_and()", loc) ==
         static_cast<int>(blockDim.x * blockDim.y * blockDim.z);
}
inline int __syncthreads_or(int pred, std::source_location loc = std::source_location::current()) {
  return ember::emu::detail::barrier(pred, "__syncthreads_or()", loc) != 0;
}
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_thread_fence(std::memory_order_seq_cst); }

// ---- warp collectives (every lane in mask must arrive; see scheduler.h) --------------------------
inline void __syncwarp(unsigned mask = 0xffffffffu, std::source_location loc = std::source_location::current()) {
  ember::emu::detail::collective(ember::emu::detail::WarpOp::SyncWarp, mask, 0, 0, 32, loc);
}
#define EMBER_EMU_SHFL(name, op)                                                                \
  template <ember::emu::detail::WarpValue T>                                                    \
  T name(unsigned mask, T var, int lane_or_delta, int width = warpSize,                         \
         std::source_location loc = std::source_location::current()) {                          \
    using namespace ember::emu::detail;                                                         \
    return from_bits<T>(collective(WarpOp::op, mask, to_bits(var), lane_or_delta, width, loc)); \
  }
EMBER_EMU_SHFL(__shfl_sync, ShflIdx)
EMBER_EMU_SHFL(__shfl_up_sync, ShflUp)
EMBER_EMU_SHFL(__shfl_down_sync, ShflDown)
EMBER_EMU_SHFL(__shfl_xor_sync, ShflXor)
#undef EMBER_EMU_SHFL
inline unsigned __ballot_sync(unsigned mask, int pred, std::source_location loc = std::source_location::current()) {
  return static_cast<unsigned>(
      ember::emu::detail::collective(ember::emu::detail::WarpOp::Ballot, mask, pred != 0, 0, 32, loc));
}
inline int __any_sync(unsigned mask, int pred, std::source_location loc = std::source_location::current()) {
  return static_cast<int>(ember::emu::detail::collective(ember::emu::detail::WarpOp::Any, mask, pred != 0, 0, 32, loc));
}
inline int __all_sync(unsigned mask, int pred, std::source_location loc = std::source_location::current()) {
  return static_cast<int>(ember::emu::detail::collective(ember::emu::detail::WarpOp::All, mask, pred != 0, 0, 32, loc));
}

// ---- atomics ----------------------------------------------------------------------------------------
#define EMBER_EMU_ATOMIC_INT(T)                                                                            \
  inline T atomicAdd(T* p, T v) { return std::atomic_ref<T>(*p).fetch_add(v, std::memory_order_relaxed); } \
  inline T atomicSub(T* p, T v) { return std::atomic_ref<T>(*p).fetch_sub(v, std::memory_order_relaxed); } \
  inline T atomicExch(T* p, T v) { return std::atomic_ref<T>(*p).exchange(v, std::memory_order_relaxed); } \
  inline T atomicAnd(T* p, T v) { return std::atomic_ref<T>(*p).fetch_and(v, std::memory_order_relaxed); } \
  inline T atomicOr(T* p, T v) { return std::atomic_ref<T>(*p).fetch_or(v, std::memory_order_relaxed); }   \
  inline T atomicXor(T* p, T v) { return std::atomic_ref<T>(*p).fetch_xor(v, std::memory_order_relaxed); } \
  inline T atomicMax(T* p, T v) {                                                                          \
    return ember::emu::detail::atomic_update(p, [v](T o) { return o < v ? v : o; });                       \
  }                                                                                                        \
  inline T atomicMin(T* p, T v) {                                                                          \
    return ember::emu::detail::atomic_update(p, [v](T o) { return v < o ? v : o; });                       \
  }                                                                                                        \
  inline T atomicCAS(T* p, T expected, T desired) {                                                        \
    std::atomic_ref<T>(*p).compare_exchange_strong(expected, desired, std::memory_order_relaxed);          \
    return expected;                                                                                       \
  }
EMBER_EMU_ATOMIC_INT(int)
EMBER_EMU_ATOMIC_INT(unsigned int)
EMBER_EMU_ATOMIC_INT(unsigned long long)
EMBER_EMU_ATOMIC_INT(long long)
#undef EMBER_EMU_ATOMIC_INT
inline float atomicAdd(float* p, float v) {
  return ember::emu::detail::atomic_update(p, [v](float o) { return o + v; });
}
inline double atomicAdd(double* p, double v) {
  return ember::emu::detail::atomic_update(p, [v](double o) { return o + v; });
}
inline float atomicExch(float* p, float v) { return std::atomic_ref<float>(*p).exchange(v, std::memory_order_relaxed); }

// ---- math (CUDA's fast intrinsics map to the accurate C functions) --------------------------------
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanhf(float x) { return tanhf(x); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __saturatef(float x) { return x > 0.0f ? (x < 1.0f ? x : 1.0f) : 0.0f; }  // NaN -> 0
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
// The emulated kernels may be compiled with FMA contraction, as nvcc compiles them (cmake/cuda_backends.cmake).
// As in CUDA, these two are never merged into an FMA: the sum's operands and the product go through a
// volatile, which g++ cannot contract across.
inline float __fadd_rn(float a, float b) {
  volatile float va = a, vb = b;
  return va + vb;
}
inline float __fmul_rn(float a, float b) {
  volatile float r = a * b;
  return r;
}
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline int __float2int_rn(float x) { return static_cast<int>(nearbyintf(x)); }
inline int __float2int_rz(float x) { return static_cast<int>(x); }
inline unsigned __float_as_uint(float x) { return std::bit_cast<unsigned>(x); }
inline float __uint_as_float(unsigned x) { return std::bit_cast<float>(x); }
inline int __float_as_int(float x) { return std::bit_cast<int>(x); }
inline float __int_as_float(int x) { return std::bit_cast<float>(x); }
inline long long __double_as_longlong(double x) { return std::bit_cast<long long>(x); }
inline double __longlong_as_double(long long x) { return std::bit_cast<double>(x); }
template <class T>
T __ldg(const T* p) {
  return *p;
}

// min/max as CUDA declares them (non-templates, so std::min/std::max and the std headers are unaffected).
#define EMBER_EMU_MINMAX(R, A, B)                                                                                  \
  inline R min(A a, B b) { return static_cast<R>(a) < static_cast<R>(b) ? static_cast<R>(a) : static_cast<R>(b); } \
  inline R max(A a, B b) { return static_cast<R>(a) < static_cast<R>(b) ? static_cast<R>(b) : static_cast<R>(a); }
EMBER_EMU_MINMAX(int, int, int)
EMBER_EMU_MINMAX(unsigned, unsigned, unsigned)
EMBER_EMU_MINMAX(unsigned, int, unsigned)
EMBER_EMU_MINMAX(unsigned, unsigned, int)
EMBER_EMU_MINMAX(long, long, long)
EMBER_EMU_MINMAX(unsigned long, unsigned long, unsigned long)
EMBER_EMU_MINMAX(long long, long long, long long)
EMBER_EMU_MINMAX(unsigned long long, unsigned long long, unsigned long long)
#undef EMBER_EMU_MINMAX
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }
inline double min(float a, double b) { return fmin(a, b); }
inline double max(float a, double b) { return fmax(a, b); }
inline double min(double a, float b) { return fmin(a, b); }
inline double max(double a, float b) { return fmax(a, b); }

// ---- bits -------------------------------------------------------------------------------------------
inline int __popc(unsigned x) { return std::popcount(x); }
inline int __popcll(unsigned long long x) { return std::popcount(x); }
inline int __clz(int x) { return std::countl_zero(static_cast<unsigned>(x)); }
inline int __clzll(long long x) { return std::countl_zero(static_cast<unsigned long long>(x)); }
inline int __ffs(int x) { return x == 0 ? 0 : std::countr_zero(static_cast<unsigned>(x)) + 1; }
inline int __ffsll(long long x) { return x == 0 ? 0 : std::countr_zero(static_cast<unsigned long long>(x)) + 1; }
inline unsigned __brev(unsigned x) {
  unsigned r = 0;
  for (int i = 0; i < 32; ++i) r |= ((x >> i) & 1u) << (31 - i);
  return r;
}
