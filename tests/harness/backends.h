/// @file tests/harness/backends.h @brief The test harness: devices to run on, reference comparisons, finite-difference gradient checks.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "ops/ops.h"

namespace ember::test {

/// CPU, plus cuda:0 when a CUDA backend (emulated or real) is linked and a device is present.
std::vector<Device> devices();
/// True when a CUDA device (emulated or real) is available.
bool has_cuda();
/// For a case that needs a CUDA device: true when one is there; otherwise a Catch2 warning that the case
/// did not run, and false (`if (!test::cuda_or_warn()) return;`). ember_tests always has the emulated
/// device, so these cases run there; ember_gpu_tests without a GPU is reported skipped as a whole.
bool cuda_or_warn();

/// max_i |a_i - b_i| / (atol/rtol scaled): true when |a - b| <= atol + rtol * |b| elementwise.
/// On failure, `why` names the first offending index and values.
bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol, std::string* why = nullptr);

/// Random input that is never zero-heavy: U[lo, hi) drawn from a fixed seed.
Tensor random_input(const Shape& shape, uint64_t seed, double lo = -1.0, double hi = 1.0,
                    const TensorOptions& opts = {});

/// Checks the analytic gradient of the scalar function f at the given f64 CPU inputs against central
/// finite differences; returns the largest relative error found.
double gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f, const std::vector<Tensor>& inputs,
                 double eps = 1e-6);

}  // namespace ember::test
