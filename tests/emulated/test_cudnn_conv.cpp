/// @file tests/emulated/test_cudnn_conv.cpp @brief conv2d on CUDA goes through cuDNN (the emulator's fake, counted at the API): one library call per direction, the algorithm found once per shape, no im2col.
#include <catch2/catch.hpp>

#include "kernels/cuda/emulator/runtime.h"
#include "nn/functional.h"
#include "tests/kernels/cuda_test_util.h"

using namespace ember;

namespace {
std::uint64_t calls(const char* name) { return emu::counters().library_call_count(name); }
}  // namespace

TEST_CASE("conv2d on CUDA calls cuDNN once per direction and finds each algorithm once per shape",
          "[emulated][conv][cuda]") {
  const TensorOptions rg = TensorOptions{}.set_device(test::kCuda).set_requires_grad(true);
  Tensor w = test::random_input({4, 3, 3, 3}, 1, -1.0, 1.0, rg), b = test::random_input({4}, 2, -1.0, 1.0, rg);
  auto step = [&](const Shape& xs, uint64_t seed) {
    Tensor x = test::random_input(xs, seed, -1.0, 1.0, rg);
    sum(nn::functional::conv2d(x, w, b, 1, 1)).backward();
  };
  step({2, 3, 8, 8}, 3);  // plans made for this shape
  emu::reset_counters();
  step({2, 3, 8, 8}, 4);
  const emu::Counters c = emu::counters();
  CHECK(calls("cudnnConvolutionForward") == 1);
  CHECK(calls("cudnnAddTensor") == 1);
  CHECK(calls("cudnnConvolutionBackwardData") == 1);
  CHECK(calls("cudnnConvolutionBackwardFilter") == 1);  // beta = 1 into .grad: no temporary, no extra add
  CHECK(calls("cudnnConvolutionBackwardBias") == 1);
  CHECK(calls("cudnnFindConvolutionForwardAlgorithmEx") == 0);  // cached
  CHECK(calls("cudnnFindConvolutionBackwardFilterAlgorithmEx") == 0);
  emu::reset_counters();
  step({3, 3, 8, 8}, 5);  // a new batch size is a new shape
  CHECK(calls("cudnnFindConvolutionForwardAlgorithmEx") == 1);
  CHECK(calls("cudnnFindConvolutionBackwardDataAlgorithmEx") == 1);
  CHECK(calls("cudnnFindConvolutionBackwardFilterAlgorithmEx") == 1);
  (void)c;
}

TEST_CASE("conv2d forward on CUDA launches no kernel of its own (no im2col)", "[emulated][conv][cuda]") {
  const Tensor x = test::random_input({2, 3, 8, 8}, 6, -1.0, 1.0, test::kOnCuda);
  const Tensor w = test::random_input({4, 3, 3, 3}, 7, -1.0, 1.0, test::kOnCuda);
  (void)nn::functional::conv2d(x, w, Tensor(), 1, 0);  // plan for the shape
  emu::reset_counters();
  const Tensor y = nn::functional::conv2d(x, w, Tensor(), 1, 0);
  CHECK(emu::counters().kernel_launches == 0);
  CHECK(calls("cudnnConvolutionForward") == 1);
  CHECK(y.shape() == Shape{2, 4, 6, 6});
}
