/// @file tests/emulator/api_check/cuda_runtime.cu @brief nvcc check: the emulator's CUDA runtime declarations (kernels/cuda/emulator/types.h, runtime.h) match the real cuda_runtime_api.h.
#include <cuda_runtime_api.h>

#include "tests/emulator/api_check/api_check.h"

#define EMBER_FAKE_API_NAMESPACE
#include "kernels/cuda/emulator/runtime.h"
#include "kernels/cuda/emulator/types.h"

EMBER_API_MAP(cudaError, cudaError);
EMBER_API_MAP(cudaMemcpyKind, cudaMemcpyKind);
EMBER_API_MAP(cudaFuncAttribute, cudaFuncAttribute);
EMBER_API_MAP(cudaDeviceAttr, cudaDeviceAttr);
EMBER_API_MAP(cudaDeviceProp, cudaDeviceProp);
EMBER_API_MAP(CUstream_st, CUstream_st);
EMBER_API_MAP(CUevent_st, CUevent_st);

// Every error code the emulator names, with CUDA's value.
#define EMBER_CHECK_ERROR(name, value, text) EMBER_API_SAME_VALUE(name);
EMBER_EMU_ERRORS(EMBER_CHECK_ERROR)
#undef EMBER_CHECK_ERROR
EMBER_API_SAME_VALUE(cudaMemcpyHostToHost);
EMBER_API_SAME_VALUE(cudaMemcpyHostToDevice);
EMBER_API_SAME_VALUE(cudaMemcpyDeviceToHost);
EMBER_API_SAME_VALUE(cudaMemcpyDeviceToDevice);
EMBER_API_SAME_VALUE(cudaMemcpyDefault);
EMBER_API_SAME_VALUE(cudaFuncAttributeMaxDynamicSharedMemorySize);
EMBER_API_SAME_VALUE(cudaFuncAttributePreferredSharedMemoryCarveout);
EMBER_API_SAME_VALUE(cudaDevAttrMaxThreadsPerBlock);
EMBER_API_SAME_VALUE(cudaDevAttrMaxSharedMemoryPerBlock);
EMBER_API_SAME_VALUE(cudaDevAttrWarpSize);
EMBER_API_SAME_VALUE(cudaDevAttrMultiProcessorCount);
EMBER_API_SAME_VALUE(cudaDevAttrL2CacheSize);
EMBER_API_SAME_VALUE(cudaDevAttrComputeCapabilityMajor);
EMBER_API_SAME_VALUE(cudaDevAttrComputeCapabilityMinor);
EMBER_API_SAME_VALUE(cudaDevAttrMaxSharedMemoryPerBlockOptin);
// The flag macros are defined by both headers: a different value would already be a redefinition error.
static_assert(cudaStreamNonBlocking == 0x01 && cudaEventDisableTiming == 0x02 && cudaHostAllocMapped == 0x02);

EMBER_API_SAME_SIZE(dim3);
EMBER_API_SAME_SIZE(uint3);
EMBER_API_SAME_SIZE(float2);
EMBER_API_SAME_SIZE(float4);
EMBER_API_SAME_SIZE(int4);
EMBER_API_SAME_SIZE(double2);
static_assert(alignof(::float4) == alignof(ember_fake::float4) && alignof(::double2) == alignof(ember_fake::double2));

// The fake cudaDeviceProp has a subset of the fields, each with the real field's type.
#define EMBER_SAME_FIELD(f) \
  static_assert(std::is_same_v<decltype(::cudaDeviceProp::f), decltype(ember_fake::cudaDeviceProp::f)>, #f)
EMBER_SAME_FIELD(name);
EMBER_SAME_FIELD(totalGlobalMem);
EMBER_SAME_FIELD(sharedMemPerBlock);
EMBER_SAME_FIELD(sharedMemPerBlockOptin);
EMBER_SAME_FIELD(sharedMemPerMultiprocessor);
EMBER_SAME_FIELD(regsPerBlock);
EMBER_SAME_FIELD(warpSize);
EMBER_SAME_FIELD(maxThreadsPerBlock);
EMBER_SAME_FIELD(maxThreadsDim);
EMBER_SAME_FIELD(maxGridSize);
EMBER_SAME_FIELD(maxThreadsPerMultiProcessor);
EMBER_SAME_FIELD(multiProcessorCount);
EMBER_SAME_FIELD(l2CacheSize);
EMBER_SAME_FIELD(major);
EMBER_SAME_FIELD(minor);
EMBER_SAME_FIELD(memoryBusWidth);
EMBER_SAME_FIELD(concurrentKernels);
EMBER_SAME_FIELD(pciBusID);
EMBER_SAME_FIELD(pciDeviceID);
EMBER_SAME_FIELD(pciDomainID);
EMBER_SAME_FIELD(unifiedAddressing);
EMBER_SAME_FIELD(asyncEngineCount);
#undef EMBER_SAME_FIELD

// Functions. Some are overloaded (cuda_runtime.h, which nvcc includes, adds C++ overloads): the
// overload with the given parameter list, spelled with each side's own types, must exist on both sides.
#define EMBER_SAME_OVERLOAD(fn, ...)                                                                      \
  namespace ember_fake {                                                                                  \
  using fn##_overload = decltype(static_cast<cudaError_t (*)(__VA_ARGS__)>(&fn));                          \
  }                                                                                                       \
  static_assert(std::is_same_v<decltype(static_cast<::cudaError_t (*)(__VA_ARGS__)>(&::fn)),               \
                               api_check::real_t<ember_fake::fn##_overload>>,                             \
                #fn)
EMBER_SAME_OVERLOAD(cudaMalloc, void**, std::size_t);
EMBER_SAME_OVERLOAD(cudaMallocHost, void**, std::size_t);
EMBER_SAME_OVERLOAD(cudaHostAlloc, void**, std::size_t, unsigned);
EMBER_SAME_OVERLOAD(cudaHostGetDevicePointer, void**, void*, unsigned);
EMBER_SAME_OVERLOAD(cudaEventCreate, cudaEvent_t*);
#undef EMBER_SAME_OVERLOAD
EMBER_API_SAME_SIGNATURE(cudaGetErrorName);
EMBER_API_SAME_SIGNATURE(cudaGetErrorString);
EMBER_API_SAME_SIGNATURE(cudaGetLastError);
EMBER_API_SAME_SIGNATURE(cudaPeekAtLastError);
EMBER_API_SAME_SIGNATURE(cudaGetDeviceCount);
EMBER_API_SAME_SIGNATURE(cudaGetDevice);
EMBER_API_SAME_SIGNATURE(cudaSetDevice);
EMBER_API_SAME_SIGNATURE(cudaGetDeviceProperties);
EMBER_API_SAME_SIGNATURE(cudaDeviceGetAttribute);
EMBER_API_SAME_SIGNATURE(cudaDeviceSynchronize);
EMBER_API_SAME_SIGNATURE(cudaDeviceReset);
EMBER_API_SAME_SIGNATURE(cudaFree);
EMBER_API_SAME_SIGNATURE(cudaFreeHost);
EMBER_API_SAME_SIGNATURE(cudaMemGetInfo);
EMBER_API_SAME_SIGNATURE(cudaMemcpy);
EMBER_API_SAME_SIGNATURE(cudaMemcpyAsync);
EMBER_API_SAME_SIGNATURE(cudaMemset);
EMBER_API_SAME_SIGNATURE(cudaMemsetAsync);
EMBER_API_SAME_SIGNATURE(cudaStreamCreate);
EMBER_API_SAME_SIGNATURE(cudaStreamCreateWithFlags);
EMBER_API_SAME_SIGNATURE(cudaStreamDestroy);
EMBER_API_SAME_SIGNATURE(cudaStreamSynchronize);
EMBER_API_SAME_SIGNATURE(cudaStreamQuery);
EMBER_API_SAME_SIGNATURE(cudaStreamWaitEvent);
EMBER_API_SAME_SIGNATURE(cudaStreamGetFlags);
EMBER_API_SAME_SIGNATURE(cudaEventCreateWithFlags);
EMBER_API_SAME_SIGNATURE(cudaEventDestroy);
EMBER_API_SAME_SIGNATURE(cudaEventRecord);
EMBER_API_SAME_SIGNATURE(cudaEventQuery);
EMBER_API_SAME_SIGNATURE(cudaEventSynchronize);
EMBER_API_SAME_SIGNATURE(cudaEventElapsedTime);
