/// @file data/text.h @brief TokenDataset: byte-level next-token samples (packed stream or padded documents) and the unigram baseline loss.
#pragma once
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace ember::data {

/// Byte-level tokens: every byte value 0..255 is a token.
inline constexpr int64_t kByteVocab = 256;
/// The target of a position that has none (padding): cross_entropy's ignore_index.
inline constexpr int64_t kIgnoreIndex = -1;
/// The byte TextPacking::Pack appends to every document.
inline constexpr char kDocumentSeparator = '\n';

/// How TokenDataset turns documents into samples of block size T. In both modes a sample is a window
/// of at most T + 1 consecutive bytes w[0..m) (2 <= m <= T + 1): x[t] = w[t] for t < m and 0 beyond
/// (for t < T), y[t] = w[t + 1] for t + 1 < m and kIgnoreIndex beyond. Consecutive windows overlap by
/// one byte, so every byte after a sequence's first is the target of exactly one position.
enum class TextPacking {
  /// All documents, each followed by kDocumentSeparator ('\n': a fortune ending in its own newline is
  /// followed by a blank line, an end-of-document mark the model can learn), concatenated into one
  /// stream s of L bytes. Sample i is the window s[i*T, min(i*T + T + 1, L)): x = s[i*T, i*T + T),
  /// y = s[i*T + 1, i*T + T + 1). The final partial window is kept (targets past the end ignored,
  /// inputs past the end 0); a window of one byte (no real target) is not a sample. Windows cross
  /// document boundaries.
  Pack,
  /// Each document on its own, as it is (no separator): a document of L >= 2 bytes gives the windows
  /// d[k*T, min(k*T + T + 1, L)) for k = 0 .. ceil((L - 1) / T) - 1, the last one padded; documents of
  /// fewer than 2 bytes give no sample. No window crosses a document boundary.
  Pad,
};

/// Next-byte prediction samples over documents (byte tokens, vocabulary kByteVocab). get_batch returns
/// x [n, T] i64 input tokens and y [n, T] i64 targets (kIgnoreIndex = padding). The bytes are stored
/// once (one byte per token); batches are built on request.
class TokenDataset final : public Dataset {
 public:
  /// Throws when block_size < 1 or when the documents give no sample at all.
  TokenDataset(const std::vector<std::string>& documents, int64_t block_size, TextPacking packing);

  int64_t size() const override { return num_sequences(); }
  /// {T}.
  Shape sample_shape() const override { return {block_size_}; }
  Batch get_batch(std::span<const int64_t> indices) const override;

  int64_t block_size() const { return block_size_; }
  TextPacking packing() const { return packing_; }
  /// Number of samples (windows).
  int64_t num_sequences() const { return static_cast<int64_t>(starts_.size()); }
  /// Number of targets that are not kIgnoreIndex, over all samples.
  int64_t real_tokens() const { return real_tokens_; }
  /// How often each byte value occurs among the real targets (sums to real_tokens()).
  std::array<int64_t, kByteVocab> target_counts() const;

 private:
  std::vector<uint8_t> bytes_;    ///< the stream (Pack) or the documents back to back (Pad)
  std::vector<int64_t> starts_;   ///< window i is bytes_[starts_[i], starts_[i] + lengths_[i])
  std::vector<int64_t> lengths_;  ///< in [2, T + 1]
  int64_t block_size_ = 0;
  TextPacking packing_ = TextPacking::Pack;
  int64_t real_tokens_ = 0;
};

/// The unigram baseline: the mean cross-entropy, in nats per byte, of the targets counted in
/// `val_counts` under the byte distribution of `train_counts` with add-one (Laplace) smoothing,
/// p(b) = (train_counts[b] + 1) / (sum(train_counts) + 256), so a byte never seen in training costs
/// a finite log(sum + 256). Equals -sum_b val_counts[b] * log p(b) / sum(val_counts). A model that has
/// learned nothing but byte frequencies reaches about this loss. Throws when val_counts is all zero or
/// a count is negative.
double unigram_loss(std::span<const int64_t, kByteVocab> train_counts, std::span<const int64_t, kByteVocab> val_counts);
/// unigram_loss over the real targets of two datasets.
double unigram_loss(const TokenDataset& train, const TokenDataset& val);

}  // namespace ember::data
