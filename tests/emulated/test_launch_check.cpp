/// @file tests/emulated/test_launch_check.cpp @brief EMBER_CUDA_CHECK_LAUNCH names the kernel whose launch failed.
#include <catch2/catch.hpp>

#include "kernels/cuda/common.cuh"

namespace {

__global__ void write_one(float* out) { out[threadIdx.x] = 1.0f; }

}  // namespace

TEST_CASE("a failed launch is reported with the kernel's name and CUDA's error", "[emulated][cuda]") {
  // 2048 threads per block: more than any GPU allows, refused at launch (cudaErrorInvalidConfiguration).
  ember::cuda::launch(write_one, 1u, 2048u, 0, ember::cuda::stream(), static_cast<float*>(nullptr));
  CHECK_THROWS_WITH([] { EMBER_CUDA_CHECK_LAUNCH("write_one"); }(),
                    Catch::Contains("launch of write_one failed") && Catch::Contains("cudaErrorInvalidConfiguration"));
  CHECK(cudaGetLastError() == cudaSuccess);  // the launch error is not sticky: the next launch may go on
}
