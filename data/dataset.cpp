/// @file data/dataset.cpp @brief ImageDataset: validation of labels/sizes and batched byte-to-float conversion.
#include "data/dataset.h"

#include "core/error.h"

namespace ember::data {

ImageDataset::ImageDataset(std::vector<uint8_t> pixels, std::vector<int64_t> labels, Shape sample_shape,
                           int64_t num_classes)
    : pixels_(std::move(pixels)),
      labels_(std::move(labels)),
      sample_shape_(std::move(sample_shape)),
      sample_numel_(shape_numel(sample_shape_)),
      num_classes_(num_classes) {
  EMBER_CHECK(num_classes_ >= 1, "ImageDataset: num_classes must be >= 1, got ", num_classes_);
  EMBER_CHECK(sample_numel_ >= 1, "ImageDataset: empty sample shape ", shape_str(sample_shape_));
  const auto n = static_cast<int64_t>(labels_.size());
  EMBER_CHECK(static_cast<int64_t>(pixels_.size()) == n * sample_numel_, "ImageDataset: ", pixels_.size(),
              " pixel bytes do not match ", n, " labels of samples of shape ", shape_str(sample_shape_));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = labels_[static_cast<size_t>(i)];
    EMBER_CHECK(c >= 0 && c < num_classes_, "ImageDataset: label ", c, " of sample ", i, " is outside [0, ",
                num_classes_, ")");
  }
}

Batch ImageDataset::get_batch(std::span<const int64_t> indices) const {
  const auto n = static_cast<int64_t>(indices.size());
  Shape xs{n};
  xs.insert(xs.end(), sample_shape_.begin(), sample_shape_.end());
  Batch b{empty(xs), empty({n}, TensorOptions{}.set_dtype(DType::i64))};
  float* x = b.x.data<float>();
  int64_t* y = b.y.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t idx = indices[static_cast<size_t>(i)];
    EMBER_CHECK(idx >= 0 && idx < size(), "ImageDataset::get_batch: index ", idx, " out of range [0, ", size(), ")");
    const uint8_t* src = pixels_.data() + idx * sample_numel_;
    float* dst = x + i * sample_numel_;
    for (int64_t j = 0; j < sample_numel_; ++j) dst[j] = static_cast<float>(src[j]) / 255.0f;
    y[i] = labels_[static_cast<size_t>(idx)];
  }
  return b;
}

std::shared_ptr<ImageDataset> ImageDataset::head(int64_t n) const {
  EMBER_CHECK(n >= 0, "ImageDataset::head: negative count ", n);
  const int64_t k = std::min(n, size());
  return std::make_shared<ImageDataset>(
      std::vector<uint8_t>(pixels_.begin(), pixels_.begin() + k * sample_numel_),
      std::vector<int64_t>(labels_.begin(), labels_.begin() + k), sample_shape_, num_classes_);
}

}  // namespace ember::data
