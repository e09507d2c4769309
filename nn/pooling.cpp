/// @file nn/pooling.cpp @brief nn::MaxPool2d: option validation and forward through functional::max_pool2d.
#include "nn/pooling.h"

#include "nn/functional.h"

namespace ember::nn {

MaxPool2d::MaxPool2d(const MaxPool2dOptions& o) : options_(o) {
  EMBER_CHECK(o.kernel_size > 0, "MaxPool2d: kernel_size must be positive, got ", o.kernel_size);
  EMBER_CHECK(o.stride >= 0, "MaxPool2d: stride must be positive (or 0 for kernel_size), got ", o.stride);
  EMBER_CHECK(o.padding >= 0 && 2 * o.padding <= o.kernel_size,
              "MaxPool2d: padding must be between 0 and kernel_size / 2, got padding ", o.padding, " for kernel_size ",
              o.kernel_size);
  if (options_.stride == 0) options_.stride = o.kernel_size;
}

Tensor MaxPool2d::forward(const Tensor& x) {
  return functional::max_pool2d(x, options_.kernel_size, options_.stride, options_.padding);
}

std::string MaxPool2d::str() const {
  return detail::concat("MaxPool2d(kernel_size=", options_.kernel_size, ", stride=", options_.stride,
                        ", padding=", options_.padding, ")");
}

}  // namespace ember::nn
