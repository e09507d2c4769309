/// @file tests/harness/datasets.h @brief Whether the real datasets the end-to-end tests read are installed (tests skip with a warning otherwise).
#pragma once
#include <filesystem>

#include "data/fashion_mnist.h"

namespace ember::test {

/// True when Debian's dataset-fashion-mnist is installed at its default place.
inline bool have_fashion_mnist() {
  return std::filesystem::exists(std::filesystem::path(data::kDefaultFashionMnistDir) / "t10k-labels-idx1-ubyte.gz");
}

}  // namespace ember::test
