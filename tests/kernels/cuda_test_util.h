/// @file tests/kernels/cuda_test_util.h @brief Helpers of the CUDA-vs-CPU kernel tests: device handles, float ulp distance, backend kind.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/ember.h"
#include "kernels/cuda/backend_info.h"
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

/// Sizes every cheap elementwise kernel is checked at: one element, around a warp, and a large odd size.
inline const std::vector<int64_t> kElementwiseSizes{1, 31, 33, 1000003};

}  // namespace ember::test
