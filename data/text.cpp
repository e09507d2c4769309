/// @file data/text.cpp @brief TokenDataset windows (packed or padded), batch assembly, target counts and the unigram loss.
#include "data/text.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace ember::data {

namespace {

/// Appends the windows of bytes [begin, begin + length) of `bytes`: starts at begin + k*T, each of
/// min(T + 1, remaining) bytes, while at least 2 bytes (one real target) remain.
void add_windows(int64_t begin, int64_t length, int64_t T, std::vector<int64_t>& starts,
                 std::vector<int64_t>& lengths) {
  for (int64_t off = 0; length - off >= 2; off += T) {
    starts.push_back(begin + off);
    lengths.push_back(std::min(T + 1, length - off));
  }
}

const char* name(TextPacking p) { return p == TextPacking::Pack ? "Pack" : "Pad"; }

}  // namespace

TokenDataset::TokenDataset(const std::vector<std::string>& documents, int64_t block_size, TextPacking packing)
    : block_size_(block_size), packing_(packing) {
  EMBER_CHECK(block_size_ >= 1, "TokenDataset: block size must be >= 1, got ", block_size_);
  EMBER_CHECK(packing_ == TextPacking::Pack || packing_ == TextPacking::Pad, "TokenDataset: unknown packing mode ",
              static_cast<int>(packing_));
  size_t total = 0;
  for (const std::string& d : documents) total += d.size() + (packing_ == TextPacking::Pack ? 1 : 0);
  bytes_.reserve(total);
  for (const std::string& d : documents) {
    const auto begin = static_cast<int64_t>(bytes_.size());
    bytes_.insert(bytes_.end(), d.begin(), d.end());
    if (packing_ == TextPacking::Pack)
      bytes_.push_back(static_cast<uint8_t>(kDocumentSeparator));
    else
      add_windows(begin, static_cast<int64_t>(d.size()), block_size_, starts_, lengths_);
  }
  if (packing_ == TextPacking::Pack) add_windows(0, static_cast<int64_t>(bytes_.size()), block_size_, starts_, lengths_);
  for (int64_t len : lengths_) real_tokens_ += len - 1;
  EMBER_CHECK(!starts_.empty(), "TokenDataset: ", documents.size(), " documents (", bytes_.size(),
              " bytes) give no sample in ", name(packing_), " mode: a sample needs at least 2 consecutive bytes",
              packing_ == TextPacking::Pad ? " of one document" : "");
}

Batch TokenDataset::get_batch(std::span<const int64_t> indices) const {
  const auto n = static_cast<int64_t>(indices.size());
  const int64_t T = block_size_;
  const TensorOptions i64 = TensorOptions{}.set_dtype(DType::i64);
  Batch b{empty({n, T}, i64), empty({n, T}, i64)};
  int64_t* x = b.x.data<int64_t>();
  int64_t* y = b.y.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t idx = indices[static_cast<size_t>(i)];
    EMBER_CHECK(idx >= 0 && idx < size(), "TokenDataset::get_batch: index ", idx, " out of range [0, ", size(), ")");
    const uint8_t* w = bytes_.data() + starts_[static_cast<size_t>(idx)];
    const int64_t m = lengths_[static_cast<size_t>(idx)];
    for (int64_t t = 0; t < T; ++t) {
      x[i * T + t] = t < m ? static_cast<int64_t>(w[t]) : 0;
      y[i * T + t] = t + 1 < m ? static_cast<int64_t>(w[t + 1]) : kIgnoreIndex;
    }
  }
  return b;
}

std::array<int64_t, kByteVocab> TokenDataset::target_counts() const {
  std::array<int64_t, kByteVocab> counts{};
  for (size_t i = 0; i < starts_.size(); ++i) {
    const uint8_t* w = bytes_.data() + starts_[i];
    for (int64_t t = 1; t < lengths_[i]; ++t) ++counts[w[t]];
  }
  return counts;
}

double unigram_loss(std::span<const int64_t, kByteVocab> train_counts, std::span<const int64_t, kByteVocab> val_counts) {
  int64_t n_train = 0, n_val = 0;
  for (int64_t b = 0; b < kByteVocab; ++b) {
    const int64_t ct = train_counts[static_cast<size_t>(b)], cv = val_counts[static_cast<size_t>(b)];
    EMBER_CHECK(ct >= 0 && cv >= 0, "unigram_loss: negative count for byte ", b, " (train ", ct, ", val ", cv, ")");
    n_train += ct;
    n_val += cv;
  }
  EMBER_CHECK(n_val > 0, "unigram_loss: no validation targets to score");
  const double denom = static_cast<double>(n_train) + static_cast<double>(kByteVocab);
  double nll = 0.0;
  for (int64_t b = 0; b < kByteVocab; ++b) {
    const int64_t cv = val_counts[static_cast<size_t>(b)];
    if (cv == 0) continue;
    const double p = (static_cast<double>(train_counts[static_cast<size_t>(b)]) + 1.0) / denom;
    nll -= static_cast<double>(cv) * std::log(p);
  }
  return nll / static_cast<double>(n_val);
}

double unigram_loss(const TokenDataset& train, const TokenDataset& val) {
  const std::array<int64_t, kByteVocab> tc = train.target_counts(), vc = val.target_counts();
  return unigram_loss(tc, vc);
}

}  // namespace ember::data
