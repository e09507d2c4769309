/// @file kernels/cuda/emulator/types.h @brief Emulator stand-ins for CUDA's qualifiers, vector types, dim3, error codes and runtime handle types.
#pragma once
#include <cstddef>

#include "kernels/cuda/emulator/fake_api.h"

// ---- qualifiers (g++ path only; not in the nvcc check of the declarations) --------------------------
#ifndef EMBER_FAKE_API_NAMESPACE
#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// One block runs entirely on one OS thread, so per-block storage is per-OS-thread storage. Kernels
// declare static shared memory with EMBER_SHARED (cuda_compat.h), which also poisons it per block;
// a bare __shared__ variable would keep the previous block's values, so using one warns.
#define __shared__ [[deprecated("declare static shared memory with EMBER_SHARED(type, name)")]] static thread_local
#endif

EMBER_FAKE_API_BEGIN

// ---- index and vector types (layout and alignment as in CUDA's vector_types.h) ---------------------
// clang-format off
struct uint3 { unsigned int x, y, z; };
struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return {x, y, z}; }
};
#define EMBER_EMU_VEC2(T, name, align) \
  struct alignas(align) name { T x, y; }; \
  constexpr name make_##name(T x, T y) { return {x, y}; }
#define EMBER_EMU_VEC3(T, name) \
  struct name { T x, y, z; }; \
  constexpr name make_##name(T x, T y, T z) { return {x, y, z}; }
#define EMBER_EMU_VEC4(T, name, align) \
  struct alignas(align) name { T x, y, z, w; }; \
  constexpr name make_##name(T x, T y, T z, T w) { return {x, y, z, w}; }
EMBER_EMU_VEC2(float, float2, 8)
EMBER_EMU_VEC3(float, float3)
EMBER_EMU_VEC4(float, float4, 16)
EMBER_EMU_VEC2(double, double2, 16)
EMBER_EMU_VEC2(long long, longlong2, 16)
EMBER_EMU_VEC2(int, int2, 8)
EMBER_EMU_VEC3(int, int3)
EMBER_EMU_VEC4(int, int4, 16)
EMBER_EMU_VEC2(unsigned int, uint2, 8)
EMBER_EMU_VEC4(unsigned int, uint4, 16)
#undef EMBER_EMU_VEC2
#undef EMBER_EMU_VEC3
#undef EMBER_EMU_VEC4
constexpr uint3 make_uint3(unsigned int x, unsigned int y, unsigned int z) { return {x, y, z}; }
// clang-format on

// ---- runtime enums and handles (numeric values and texts as in CUDA) --------------------------------
#define EMBER_EMU_ERRORS(X)                                                   \
  X(cudaSuccess, 0, "no error")                                               \
  X(cudaErrorInvalidValue, 1, "invalid argument")                             \
  X(cudaErrorMemoryAllocation, 2, "out of memory")                            \
  X(cudaErrorInitializationError, 3, "initialization error")                  \
  X(cudaErrorInvalidConfiguration, 9, "invalid configuration argument")       \
  X(cudaErrorInvalidHostPointer, 16, "invalid host pointer")                  \
  X(cudaErrorInvalidDevicePointer, 17, "invalid device pointer")              \
  X(cudaErrorInvalidMemcpyDirection, 21, "invalid copy direction for memcpy") \
  X(cudaErrorInvalidDeviceFunction, 98, "invalid device function")            \
  X(cudaErrorNoDevice, 100, "no CUDA-capable device is detected")             \
  X(cudaErrorInvalidDevice, 101, "invalid device ordinal")                    \
  X(cudaErrorInvalidResourceHandle, 400, "invalid resource handle")           \
  X(cudaErrorIllegalState, 401, "the operation cannot be performed in the present state") \
  X(cudaErrorNotReady, 600, "device not ready")                               \
  X(cudaErrorIllegalAddress, 700, "an illegal memory access was encountered") \
  X(cudaErrorLaunchFailure, 719, "unspecified launch failure")                \
  X(cudaErrorHostMemoryAlreadyRegistered, 712, "part or all of the requested memory range is already mapped") \
  X(cudaErrorHostMemoryNotRegistered, 713, "pointer does not correspond to a registered memory region") \
  X(cudaErrorNotPermitted, 800, "operation not permitted")                    \
  X(cudaErrorNotSupported, 801, "operation not supported")                    \
  X(cudaErrorUnknown, 999, "unknown error")
#define EMBER_EMU_ENUM(name, value, text) name = value,
enum cudaError { EMBER_EMU_ERRORS(EMBER_EMU_ENUM) };
#undef EMBER_EMU_ENUM
using cudaError_t = cudaError;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4
};
enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
  cudaFuncAttributePreferredSharedMemoryCarveout = 9
};
enum cudaDeviceAttr {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrMaxSharedMemoryPerBlock = 8,
  cudaDevAttrWarpSize = 10,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrL2CacheSize = 38,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97
};
#define cudaStreamDefault 0x00
#define cudaStreamNonBlocking 0x01
#define cudaEventDefault 0x00
#define cudaEventBlockingSync 0x01
#define cudaEventDisableTiming 0x02
#define cudaHostAllocDefault 0x00
#define cudaHostAllocPortable 0x01
#define cudaHostAllocMapped 0x02
#define cudaHostAllocWriteCombined 0x04

struct CUstream_st;  // defined in runtime.cpp
struct CUevent_st;
using cudaStream_t = CUstream_st*;
using cudaEvent_t = CUevent_st*;
#define cudaStreamLegacy ((cudaStream_t)0x1)
#define cudaStreamPerThread ((cudaStream_t)0x2)

struct cudaDeviceProp {
  char name[256];
  std::size_t totalGlobalMem, sharedMemPerBlock, sharedMemPerBlockOptin, sharedMemPerMultiprocessor;
  int regsPerBlock, warpSize, maxThreadsPerBlock, maxThreadsDim[3], maxGridSize[3], maxThreadsPerMultiProcessor;
  int multiProcessorCount, l2CacheSize, major, minor, clockRate, memoryClockRate, memoryBusWidth, concurrentKernels;
  int pciBusID, pciDeviceID, pciDomainID, unifiedAddressing, asyncEngineCount;
};

EMBER_FAKE_API_END
