/// @file tests/harness/cuda_or_warn.cpp @brief cuda_or_warn: a CUDA case that cannot run says so with a Catch2 warning (kept out of backends.cpp, which non-Catch2 programs link).
#include <catch2/catch.hpp>

#include "tests/harness/backends.h"

namespace ember::test {

bool cuda_or_warn() {
  if (has_cuda()) return true;
  WARN("skipped: no CUDA device (ember_tests runs this case on the emulated device)");
  return false;
}

}  // namespace ember::test
