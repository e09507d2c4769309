/// @file data/fashion_mnist.h @brief Loads Fashion-MNIST (or MNIST) from the four IDX .gz files of a directory.
#pragma once
#include <memory>
#include <string>

#include "data/dataset.h"

namespace ember::data {

/// Where Debian's `dataset-fashion-mnist` package installs the files.
inline constexpr const char* kDefaultFashionMnistDir = "/usr/share/datasets/fashion-mnist";

enum class Split { Train, Test };

/// Reads `{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz` (or the same names without .gz) from `dir`:
/// images [N, 1, 28, 28] as pixel / 255, labels in [0, 10). Throws ember::Error naming the file when one
/// is missing or malformed, or when image and label counts disagree.
std::shared_ptr<ImageDataset> load_fashion_mnist(const std::string& dir, Split split);

}  // namespace ember::data
