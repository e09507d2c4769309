/// @file data/dataset.h @brief Dataset interface (random access to samples, batched) and an in-memory image dataset.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/tensor.h"

namespace ember::data {

/// A batch of n samples on the CPU: inputs `x` ([n, ...sample shape]: f32 values, or i64 tokens as
/// TokenDataset's [n, T]) and targets `y` (i64: class labels [n], or next-token targets [n, T] with -1
/// for positions to ignore).
struct Batch {
  Tensor x;
  Tensor y;
  /// Number of samples n, dim 0 of y (0 for an empty shard of a short last step).
  int64_t size() const { return y.defined() && y.dim() > 0 ? y.shape()[0] : 0; }
};

/// Random-access collection of labelled samples, the analogue of torch::data::Dataset.
class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  /// Shape of one input sample, e.g. {1, 28, 28}.
  virtual Shape sample_shape() const = 0;
  /// The samples at `indices` (each in [0, size())), stacked in that order. Throws on an index out of range.
  virtual Batch get_batch(std::span<const int64_t> indices) const = 0;
};

/// Images stored as bytes (as they come from IDX files) with integer labels; get_batch returns the
/// pixels as pixel / 255 in float32, NCHW.
class ImageDataset final : public Dataset {
 public:
  /// `pixels` holds n * prod(sample_shape) bytes, `labels` n values in [0, num_classes).
  ImageDataset(std::vector<uint8_t> pixels, std::vector<int64_t> labels, Shape sample_shape, int64_t num_classes);

  int64_t size() const override { return static_cast<int64_t>(labels_.size()); }
  Shape sample_shape() const override { return sample_shape_; }
  Batch get_batch(std::span<const int64_t> indices) const override;
  int64_t num_classes() const { return num_classes_; }
  /// The first n samples (all of them when n >= size()), as a new dataset.
  std::shared_ptr<ImageDataset> head(int64_t n) const;

 private:
  std::vector<uint8_t> pixels_;
  std::vector<int64_t> labels_;
  Shape sample_shape_;
  int64_t sample_numel_ = 0;
  int64_t num_classes_ = 0;
};

}  // namespace ember::data
