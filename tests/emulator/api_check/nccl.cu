/// @file tests/emulator/api_check/nccl.cu @brief The emulator's fake <nccl.h> against NCCL's real one (nvcc, compile only): every declared function's signature, every enumerator, the macros and the sizes of the types passed by value.
#include <nccl.h>

// The real header's macros, captured before the fake header defines its own under the same names.
namespace real_macros {
constexpr int major = NCCL_MAJOR, minor = NCCL_MINOR, patch = NCCL_PATCH, code = NCCL_VERSION_CODE;
constexpr int version_old = NCCL_VERSION(2, 8, 4), version_new = NCCL_VERSION(2, 28, 9),
              version_3 = NCCL_VERSION(3, 1, 2);
constexpr char suffix[] = NCCL_SUFFIX;
constexpr int id_bytes = NCCL_UNIQUE_ID_BYTES, undef_int = NCCL_CONFIG_UNDEF_INT, split_nocolor = NCCL_SPLIT_NOCOLOR;
constexpr float undef_float = NCCL_UNDEF_FLOAT;
constexpr const char* undef_ptr = NCCL_CONFIG_UNDEF_PTR;
constexpr ncclComm_t comm_null = NCCL_COMM_NULL;
constexpr ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
}  // namespace real_macros

#undef NCCL_MAJOR
#undef NCCL_MINOR
#undef NCCL_PATCH
#undef NCCL_SUFFIX
#undef NCCL_VERSION_CODE
#undef NCCL_VERSION
#undef NCCL_COMM_NULL
#undef NCCL_UNIQUE_ID_BYTES
#undef NCCL_CONFIG_UNDEF_INT
#undef NCCL_CONFIG_UNDEF_PTR
#undef NCCL_SPLIT_NOCOLOR
#undef NCCL_UNDEF_FLOAT
#undef NCCL_CONFIG_INITIALIZER

#define EMBER_FAKE_API_NAMESPACE
#include "kernels/cuda/emulator/include/nccl.h"
#include "tests/emulator/api_check/api_check.h"

EMBER_API_MAP(ncclComm, ncclComm);
EMBER_API_MAP(ncclUniqueId, ncclUniqueId);
EMBER_API_MAP(ncclConfig_t, ncclConfig_t);
EMBER_API_MAP(ncclResult_t, ncclResult_t);
EMBER_API_MAP(ncclRedOp_t, ncclRedOp_t);
EMBER_API_MAP(ncclDataType_t, ncclDataType_t);

// ---- macros ----
namespace ember_fake {
constexpr ncclConfig_t fake_config = NCCL_CONFIG_INITIALIZER;  // sizeof(ncclConfig_t) is the fake's here
}  // namespace ember_fake

/// True when every field of the two initialized configs is equal.
constexpr bool same_config(const ncclConfig_t& r, const ember_fake::ncclConfig_t& f) {
  return r.size == f.size && r.magic == f.magic && r.version == f.version && r.blocking == f.blocking &&
         r.cgaClusterSize == f.cgaClusterSize && r.minCTAs == f.minCTAs && r.maxCTAs == f.maxCTAs &&
         r.netName == f.netName && r.splitShare == f.splitShare && r.trafficClass == f.trafficClass &&
         r.commName == f.commName && r.collnetEnable == f.collnetEnable && r.CTAPolicy == f.CTAPolicy &&
         r.shrinkShare == f.shrinkShare && r.nvlsCTAs == f.nvlsCTAs && r.nChannelsPerNetPeer == f.nChannelsPerNetPeer &&
         r.nvlinkCentricSched == f.nvlinkCentricSched;
}

static_assert(real_macros::major == NCCL_MAJOR && real_macros::minor == NCCL_MINOR && real_macros::patch == NCCL_PATCH,
              "NCCL_MAJOR/MINOR/PATCH differ from the real header's");
static_assert(real_macros::code == NCCL_VERSION_CODE, "NCCL_VERSION_CODE differs from the real header's");
static_assert(real_macros::version_old == NCCL_VERSION(2, 8, 4) && real_macros::version_new == NCCL_VERSION(2, 28, 9) &&
                  real_macros::version_3 == NCCL_VERSION(3, 1, 2),
              "NCCL_VERSION(X,Y,Z) differs from the real header's");
static_assert(sizeof(real_macros::suffix) == sizeof(NCCL_SUFFIX), "NCCL_SUFFIX differs from the real header's");
static_assert(real_macros::id_bytes == NCCL_UNIQUE_ID_BYTES, "NCCL_UNIQUE_ID_BYTES differs from the real header's");
static_assert(real_macros::undef_int == NCCL_CONFIG_UNDEF_INT && real_macros::undef_ptr == NCCL_CONFIG_UNDEF_PTR,
              "NCCL_CONFIG_UNDEF_INT/PTR differ from the real header's");
static_assert(real_macros::split_nocolor == NCCL_SPLIT_NOCOLOR && real_macros::undef_float == NCCL_UNDEF_FLOAT,
              "NCCL_SPLIT_NOCOLOR/NCCL_UNDEF_FLOAT differ from the real header's");
static_assert(real_macros::comm_null == static_cast<ncclComm_t>(NCCL_COMM_NULL), "NCCL_COMM_NULL differs");
static_assert(same_config(real_macros::config, ember_fake::fake_config),
              "NCCL_CONFIG_INITIALIZER differs from the real header's");

// ---- types passed by value, and the enums ----
EMBER_API_SAME_SIZE(ncclUniqueId);
EMBER_API_SAME_SIZE(ncclConfig_t);
EMBER_API_SAME_SIZE(ncclResult_t);
EMBER_API_SAME_SIZE(ncclRedOp_t);
EMBER_API_SAME_SIZE(ncclDataType_t);
static_assert(alignof(ncclConfig_t) == alignof(ember_fake::ncclConfig_t), "ncclConfig_t: alignment differs");

EMBER_API_SAME_VALUE(ncclSuccess);
EMBER_API_SAME_VALUE(ncclUnhandledCudaError);
EMBER_API_SAME_VALUE(ncclSystemError);
EMBER_API_SAME_VALUE(ncclInternalError);
EMBER_API_SAME_VALUE(ncclInvalidArgument);
EMBER_API_SAME_VALUE(ncclInvalidUsage);
EMBER_API_SAME_VALUE(ncclRemoteError);
EMBER_API_SAME_VALUE(ncclInProgress);
EMBER_API_SAME_VALUE(ncclNumResults);

EMBER_API_SAME_VALUE(ncclNumOps_dummy);
EMBER_API_SAME_VALUE(ncclSum);
EMBER_API_SAME_VALUE(ncclProd);
EMBER_API_SAME_VALUE(ncclMax);
EMBER_API_SAME_VALUE(ncclMin);
EMBER_API_SAME_VALUE(ncclAvg);
EMBER_API_SAME_VALUE(ncclNumOps);
EMBER_API_SAME_VALUE(ncclMaxRedOp);

EMBER_API_SAME_VALUE(ncclInt8);
EMBER_API_SAME_VALUE(ncclChar);
EMBER_API_SAME_VALUE(ncclUint8);
EMBER_API_SAME_VALUE(ncclInt32);
EMBER_API_SAME_VALUE(ncclInt);
EMBER_API_SAME_VALUE(ncclUint32);
EMBER_API_SAME_VALUE(ncclInt64);
EMBER_API_SAME_VALUE(ncclUint64);
EMBER_API_SAME_VALUE(ncclFloat16);
EMBER_API_SAME_VALUE(ncclHalf);
EMBER_API_SAME_VALUE(ncclFloat32);
EMBER_API_SAME_VALUE(ncclFloat);
EMBER_API_SAME_VALUE(ncclFloat64);
EMBER_API_SAME_VALUE(ncclDouble);
EMBER_API_SAME_VALUE(ncclBfloat16);
EMBER_API_SAME_VALUE(ncclFloat8e4m3);
EMBER_API_SAME_VALUE(ncclFloat8e5m2);
EMBER_API_SAME_VALUE(ncclNumTypes);

// ---- every declared function ----
EMBER_API_SAME_SIGNATURE(ncclGetVersion);
EMBER_API_SAME_SIGNATURE(ncclGetUniqueId);
EMBER_API_SAME_SIGNATURE(ncclCommInitRankConfig);
EMBER_API_SAME_SIGNATURE(ncclCommInitRank);
EMBER_API_SAME_SIGNATURE(ncclCommFinalize);
EMBER_API_SAME_SIGNATURE(ncclCommDestroy);
EMBER_API_SAME_SIGNATURE(ncclCommAbort);
EMBER_API_SAME_SIGNATURE(ncclCommGetAsyncError);
EMBER_API_SAME_SIGNATURE(ncclCommCount);
EMBER_API_SAME_SIGNATURE(ncclCommCuDevice);
EMBER_API_SAME_SIGNATURE(ncclCommUserRank);
EMBER_API_SAME_SIGNATURE(ncclGetErrorString);
EMBER_API_SAME_SIGNATURE(ncclGetLastError);
EMBER_API_SAME_SIGNATURE(ncclReduce);
EMBER_API_SAME_SIGNATURE(ncclBcast);
EMBER_API_SAME_SIGNATURE(ncclBroadcast);
EMBER_API_SAME_SIGNATURE(ncclAllReduce);
EMBER_API_SAME_SIGNATURE(ncclReduceScatter);
EMBER_API_SAME_SIGNATURE(ncclAllGather);
EMBER_API_SAME_SIGNATURE(ncclGroupStart);
EMBER_API_SAME_SIGNATURE(ncclGroupEnd);
