/// @file tests/kernels/cuda_test_util.h @brief Helpers of the CUDA-vs-CPU kernel tests: device handles, float ulp distance, backend kind.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "ops/ops.h"
#include "kernels/cuda/backend_info.h"
#include "kernels/cuda/testing.h"
#include "kernels/dispatch.h"
#include "tests/harness/backends.h"

namespace ember::test {

inline const Device kCuda = Device::cuda(0);
inline const TensorOptions kOnCuda{DType::f32, Device::cuda(0)};

/// True when the CUDA kernels run through the CPU emulator (where results must equal the CPU's bitwise).
inline bool cuda_emulated() { return kernels::table_for<kernels::CudaBackendInfo>(DeviceType::CUDA).emulated; }

/// Distance in units in the last place between two floats (0 when both are NaN; huge for NaN vs number).
inline int64_t ulp_distance(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b) ? 0 : INT64_MAX;
  auto ordered = [](float f) {
    const int32_t i = std::bit_cast<int32_t>(f);
    return i < 0 ? static_cast<int64_t>(INT32_MIN) - i : static_cast<int64_t>(i);
  };
  return std::llabs(ordered(a) - ordered(b));
}

/// Largest ulp distance between two f32 tensors of one shape (any devices); `where` gets the worst index.
inline int64_t max_ulp(const Tensor& a, const Tensor& b, std::string* where = nullptr) {
  const auto va = a.to_vector<float>(), vb = b.to_vector<float>();
  if (va.size() != vb.size()) return INT64_MAX;
  int64_t worst = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    const int64_t d = ulp_distance(va[i], vb[i]);
    if (d > worst) {
      worst = d;
      if (where) *where = "index " + std::to_string(i) + ": " + std::to_string(va[i]) + " vs " + std::to_string(vb[i]);
    }
  }
  return worst;
}

/// Sizes every cheap elementwise kernel is checked at: one element, around a warp, a few blocks' worth
/// (several grid-stride steps per thread under a grid cap of 2) and a large odd size.
inline const std::vector<int64_t> kElementwiseSizes{1, 31, 33, 5003, 1000003};

/// Grid caps the CUDA kernel tests run under: 0 keeps every launcher's own cap; 2 allows 2 blocks per
/// launch, so on small inputs each block runs its grid-stride, row, channel or batch loop several times
/// and a multi-tensor list takes several launches (paths that otherwise only large inputs reach).
inline constexpr unsigned kGridCaps[] = {0, 2};

/// Applies a grid cap of kGridCaps while it lives (0: none); str() names it for INFO.
class GridCap {
 public:
  explicit GridCap(unsigned cap) : cap_(cap) {
    if (cap != 0) scope_.emplace(cap);
  }
  std::string str() const {
    return cap_ == 0 ? "default grid caps" : "grid cap " + std::to_string(cap_) + " blocks";
  }

 private:
  unsigned cap_;
  std::optional<cuda::testing::ScopedGridCap> scope_;
};

}  // namespace ember::test
