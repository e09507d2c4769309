/// @file kernels/cuda/emulator/include/nccl.h @brief `#include <nccl.h>` in the emulated build: NCCL 2.28's types, values and the subset of its API that the emulator implements (kernels/cuda/emulator/nccl.cpp), declared by hand with the real header's names and signatures.
//
// Ranks are threads or processes of one machine, one emulated device each; ncclGetUniqueId names a
// POSIX shared-memory segment that ncclCommInitRank joins, and collectives run on the CPU through that
// segment when their stream runs (how, and the environment variables: kernels/cuda/emulator/nccl.cpp).
// Declared, and checked against the real header by tests/emulator/api_check/nccl.cu:
//  - communicators: ncclGetVersion, ncclGetUniqueId, ncclCommInitRank, ncclCommInitRankConfig (blocking
//    or not), ncclCommFinalize, ncclCommDestroy, ncclCommAbort, ncclCommGetAsyncError, ncclCommCount,
//    ncclCommCuDevice, ncclCommUserRank, ncclGetErrorString, ncclGetLastError;
//  - collectives: ncclAllReduce, ncclBroadcast, ncclBcast, ncclReduce, ncclAllGather, ncclReduceScatter;
//  - ncclGroupStart, ncclGroupEnd.
// Reductions take the integer and float32/float64 types; the copies (broadcast, all-gather) take every type.
#pragma once
#include <cuda_runtime.h>

#include <climits>
#include <cstddef>

#include "kernels/cuda/emulator/fake_api.h"

// The real header's macros, with its values.
#define NCCL_MAJOR 2
#define NCCL_MINOR 28
#define NCCL_PATCH 9
#define NCCL_SUFFIX ""
#define NCCL_VERSION_CODE 22809
#define NCCL_VERSION(X, Y, Z) (((X) <= 2 && (Y) <= 8) ? (X) * 1000 + (Y) * 100 + (Z) : (X) * 10000 + (Y) * 100 + (Z))
#define NCCL_COMM_NULL NULL
#define NCCL_UNIQUE_ID_BYTES 128
#define NCCL_CONFIG_UNDEF_INT INT_MIN
#define NCCL_CONFIG_UNDEF_PTR NULL
#define NCCL_SPLIT_NOCOLOR -1
#define NCCL_UNDEF_FLOAT -1.0f
/// Must initialize every ncclConfig_t (the fields after `version` are left "undefined": defaults).
#define NCCL_CONFIG_INITIALIZER                                                                          \
  {                                                                                                      \
    sizeof(ncclConfig_t), 0xcafebeef, NCCL_VERSION(NCCL_MAJOR, NCCL_MINOR, NCCL_PATCH),                  \
        NCCL_CONFIG_UNDEF_INT, NCCL_CONFIG_UNDEF_INT, NCCL_CONFIG_UNDEF_INT, NCCL_CONFIG_UNDEF_INT,      \
        NCCL_CONFIG_UNDEF_PTR, NCCL_CONFIG_UNDEF_INT, NCCL_CONFIG_UNDEF_INT, NCCL_CONFIG_UNDEF_PTR,      \
        NCCL_CONFIG_UNDEF_INT, NCCL_CONFIG_UNDEF_INT, NCCL_CONFIG_UNDEF_INT, NCCL_CONFIG_UNDEF_INT,      \
        NCCL_CONFIG_UNDEF_INT, NCCL_CONFIG_UNDEF_INT                                                     \
  }

EMBER_FAKE_API_BEGIN

/// Opaque communicator handle (one per rank).
struct ncclComm;
typedef struct ncclComm* ncclComm_t;

/// Names the rendezvous of one communicator; made by ncclGetUniqueId, passed to every rank. The
/// emulator stores the shared-memory segment's name in it ("/ember-nccl-...", NUL-terminated).
typedef struct {
  char internal[NCCL_UNIQUE_ID_BYTES];
} ncclUniqueId;

typedef enum {
  ncclSuccess = 0,
  ncclUnhandledCudaError = 1,
  ncclSystemError = 2,
  ncclInternalError = 3,
  ncclInvalidArgument = 4,
  ncclInvalidUsage = 5,
  ncclRemoteError = 6,
  ncclInProgress = 7,
  ncclNumResults = 8
} ncclResult_t;

/// Communicator options (ncclCommInitRankConfig). The emulator reads `blocking` (0: init and calls
/// return ncclInProgress, poll ncclCommGetAsyncError); it checks `size`/`magic` and ignores the rest.
typedef struct ncclConfig_v22800 {
  size_t size;
  unsigned int magic;
  unsigned int version;
  int blocking;
  int cgaClusterSize;
  int minCTAs;
  int maxCTAs;
  const char* netName;
  int splitShare;
  int trafficClass;
  const char* commName;
  int collnetEnable;
  int CTAPolicy;
  int shrinkShare;
  int nvlsCTAs;
  int nChannelsPerNetPeer;
  int nvlinkCentricSched;
} ncclConfig_t;

typedef enum { ncclNumOps_dummy = 5 } ncclRedOp_dummy_t;
typedef enum {
  ncclSum = 0,
  ncclProd = 1,
  ncclMax = 2,
  ncclMin = 3,
  ncclAvg = 4,
  ncclNumOps = 5,
  ncclMaxRedOp = 0x7fffffff >> (32 - 8 * sizeof(ncclRedOp_dummy_t))
} ncclRedOp_t;

typedef enum {
  ncclInt8 = 0,
  ncclChar = 0,
  ncclUint8 = 1,
  ncclInt32 = 2,
  ncclInt = 2,
  ncclUint32 = 3,
  ncclInt64 = 4,
  ncclUint64 = 5,
  ncclFloat16 = 6,
  ncclHalf = 6,
  ncclFloat32 = 7,
  ncclFloat = 7,
  ncclFloat64 = 8,
  ncclDouble = 8,
  ncclBfloat16 = 9,
  ncclFloat8e4m3 = 10,
  ncclFloat8e5m2 = 11,
  ncclNumTypes = 12
} ncclDataType_t;

// ---- communicators ----

/// NCCL_VERSION_CODE of the emulated library.
ncclResult_t ncclGetVersion(int* version);
/// A new rendezvous name (creates nothing: the first rank to join creates the segment).
ncclResult_t ncclGetUniqueId(ncclUniqueId* uniqueId);
/// Joins rendezvous `commId` as `rank` of `nranks` on the current device, with options.
ncclResult_t ncclCommInitRankConfig(ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank, ncclConfig_t* config);
/// Joins rendezvous `commId` as `rank` of `nranks` on the current device; returns once every rank has.
ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank);
/// No further collectives. Waits until the queued ones have completed (non-blocking: ncclInProgress, and
/// ncclCommGetAsyncError answers ncclInProgress until then; polling it lets them run).
ncclResult_t ncclCommFinalize(ncclComm_t comm);
/// Releases the handle (queued collectives still complete). Fails with the async error if there is one.
ncclResult_t ncclCommDestroy(ncclComm_t comm);
/// Releases the handle; its queued collectives complete without effect, and the peers' fail.
ncclResult_t ncclCommAbort(ncclComm_t comm);
/// Asynchronous state: ncclInProgress (init, a non-blocking call or finalize not settled), an error, or
/// ncclSuccess. Polling it advances the init and the communicator's queued collectives (as a GPU would).
ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* asyncError);
ncclResult_t ncclCommCount(const ncclComm_t comm, int* count);
ncclResult_t ncclCommCuDevice(const ncclComm_t comm, int* device);
ncclResult_t ncclCommUserRank(const ncclComm_t comm, int* rank);
const char* ncclGetErrorString(ncclResult_t result);
/// The message of the last error on the calling host thread (`comm` is unused, as in NCCL).
const char* ncclGetLastError(ncclComm_t comm);

// ---- collectives (queued on `stream`; in place when sendbuff == recvbuff) ----

ncclResult_t ncclReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, ncclRedOp_t op,
                        int root, ncclComm_t comm, cudaStream_t stream);
ncclResult_t ncclBcast(void* buff, size_t count, ncclDataType_t datatype, int root, ncclComm_t comm,
                       cudaStream_t stream);
ncclResult_t ncclBroadcast(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, int root,
                           ncclComm_t comm, cudaStream_t stream);
ncclResult_t ncclAllReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream);
ncclResult_t ncclReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount, ncclDataType_t datatype,
                               ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream);
ncclResult_t ncclAllGather(const void* sendbuff, void* recvbuff, size_t sendcount, ncclDataType_t datatype,
                           ncclComm_t comm, cudaStream_t stream);

// ---- groups: collectives between ncclGroupStart and the outermost ncclGroupEnd are queued at the end ----

ncclResult_t ncclGroupStart();
ncclResult_t ncclGroupEnd();

EMBER_FAKE_API_END
