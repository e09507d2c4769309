/// @file tests/gpu/main.cpp @brief main of the real-GPU suite: the same tests, run on the device; exit 77 (ctest "skipped") without a GPU.
#include <cstdio>

#include "kernels/transfer.h"
#include "tests/catch_session.h"

int main(int argc, char** argv) {
  if (ember::kernels::device_count(ember::DeviceType::CUDA) == 0) {
    std::printf("ember_gpu_tests: no CUDA device present; skipping the real-GPU suite\n");
    return 77;
  }
  return ember::test::run_catch_session(argc, argv);
}
