/// @file examples/ember_train/lm_data.cpp @brief ember-train-lm's corpus: fortunes cut into byte sequences, the unigram baseline, the sample at the end.
#include "examples/ember_train/lm_data.h"

#include <algorithm>
#include <iomanip>
#include <sstream>
#include <utility>

#include "core/error.h"
#include "data/fortunes.h"
#include "data/text.h"
#include "examples/gpt/gpt.h"

namespace ember::train {

namespace {

/// The first `n` samples of a dataset (--limit-train / --limit-test).
class FirstSamples final : public data::Dataset {
 public:
  FirstSamples(std::shared_ptr<const data::Dataset> all, int64_t n) : all_(std::move(all)), n_(std::min(n, all_->size())) {}
  int64_t size() const override { return n_; }
  Shape sample_shape() const override { return all_->sample_shape(); }
  data::Batch get_batch(std::span<const int64_t> indices) const override {
    for (int64_t i : indices) EMBER_CHECK(i >= 0 && i < n_, "sample index ", i, " out of range [0, ", n_, ")");
    return all_->get_batch(indices);
  }

 private:
  std::shared_ptr<const data::Dataset> all_;
  int64_t n_;
};

std::shared_ptr<data::Dataset> first(std::shared_ptr<data::Dataset> d, int64_t limit) {
  if (limit <= 0 || limit >= d->size()) return d;
  return std::make_shared<FirstSamples>(std::move(d), limit);
}

std::string megabytes(int64_t bytes) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(2) << static_cast<double>(bytes) / 1e6 << " MB";
  return s.str();
}

}  // namespace

LmData load_lm_data(const TrainOptions& o) {
  const data::TextCorpus corpus = data::load_fortunes(o.data_dir);
  const auto packing = o.lm.pad ? data::TextPacking::Pad : data::TextPacking::Pack;
  auto train = std::make_shared<data::TokenDataset>(corpus.train_docs, o.lm.block_size, packing);
  auto val = std::make_shared<data::TokenDataset>(corpus.val_docs, o.lm.block_size, packing);
  LmData d;
  d.unigram_loss = data::unigram_loss(*train, *val);  // over the whole splits, whatever the limits
  std::ostringstream s;
  s << o.data_dir << ": " << corpus.train_files.size() << " training files (" << megabytes(corpus.train_bytes())
    << ", " << train->real_tokens() << " target tokens), " << corpus.val_files.size() << " validation files ("
    << megabytes(corpus.val_bytes()) << "), " << (o.lm.pad ? "padded document by document" : "packed")
    << "; unigram baseline " << std::fixed << std::setprecision(4) << d.unigram_loss << " nats/byte";
  d.description = s.str();
  d.train = first(std::move(train), o.limit_train);
  d.val = first(std::move(val), o.limit_test);
  return d;
}

std::string generate_sample(nn::Module& model, const TrainOptions& o) {
  auto* gpt = dynamic_cast<gpt::GPT*>(&model);
  EMBER_CHECK(gpt != nullptr, "--sample: the model is not a GPT");
  Generator gen(o.seed);
  return gpt::generate(*gpt, o.lm.prompt, o.lm.sample, o.lm.temperature, /*top_k=*/0, gen);
}

}  // namespace ember::train
