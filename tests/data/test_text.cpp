/// @file tests/data/test_text.cpp @brief TokenDataset packing and padding, the unigram loss and load_fortunes against naive references.
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/fortunes.h"
#include "data/text.h"
#include "tests/train/temp_dir.h"

using namespace ember;
using namespace ember::data;
using Catch::Matchers::Contains;

namespace {

/// One sample as the naive rule says: window w of m = |w| bytes, x[t] = w[t] or 0, y[t] = w[t+1] or -1.
struct Sample {
  std::vector<int64_t> x, y;
  bool operator==(const Sample&) const = default;
};

Sample naive_window(const std::string& s, size_t begin, size_t end, int64_t T) {
  Sample out;
  for (int64_t t = 0; t < T; ++t) {
    const size_t p = begin + static_cast<size_t>(t);
    out.x.push_back(p < end ? static_cast<int64_t>(static_cast<uint8_t>(s[p])) : 0);
    out.y.push_back(p + 1 < end ? static_cast<int64_t>(static_cast<uint8_t>(s[p + 1])) : -1);
  }
  return out;
}

/// Pack: the stream of documents each followed by '\n', windows starting every T bytes while >= 2 remain.
std::vector<Sample> naive_pack(const std::vector<std::string>& docs, int64_t T) {
  std::string s;
  for (const std::string& d : docs) s += d + "\n";
  std::vector<Sample> out;
  for (size_t i = 0; i + 1 < s.size(); i += static_cast<size_t>(T))
    out.push_back(naive_window(s, i, std::min(s.size(), i + static_cast<size_t>(T) + 1), T));
  return out;
}

/// Pad: the same per document, no separator.
std::vector<Sample> naive_pad(const std::vector<std::string>& docs, int64_t T) {
  std::vector<Sample> out;
  for (const std::string& d : docs)
    for (size_t i = 0; i + 1 < d.size(); i += static_cast<size_t>(T))
      out.push_back(naive_window(d, i, std::min(d.size(), i + static_cast<size_t>(T) + 1), T));
  return out;
}

/// Every sample of the dataset, through get_batch of all indices in order.
std::vector<Sample> all_samples(const TokenDataset& ds) {
  std::vector<int64_t> idx(static_cast<size_t>(ds.size()));
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int64_t>(i);
  const Batch b = ds.get_batch(idx);
  const int64_t T = ds.block_size();
  REQUIRE(b.x.shape() == Shape{ds.size(), T});
  REQUIRE(b.y.shape() == Shape{ds.size(), T});
  REQUIRE(b.x.dtype() == DType::i64);
  REQUIRE(b.y.dtype() == DType::i64);
  REQUIRE(b.size() == ds.size());
  const std::vector<int64_t> x = b.x.to_vector<int64_t>(), y = b.y.to_vector<int64_t>();
  std::vector<Sample> out(static_cast<size_t>(ds.size()));
  for (size_t i = 0; i < out.size(); ++i) {
    out[i].x.assign(x.begin() + static_cast<ptrdiff_t>(i) * T, x.begin() + static_cast<ptrdiff_t>(i + 1) * T);
    out[i].y.assign(y.begin() + static_cast<ptrdiff_t>(i) * T, y.begin() + static_cast<ptrdiff_t>(i + 1) * T);
  }
  return out;
}

/// The non-ignored targets of the samples, in order.
std::vector<int64_t> real_targets(const std::vector<Sample>& samples) {
  std::vector<int64_t> out;
  for (const Sample& s : samples)
    for (int64_t v : s.y)
      if (v != -1) out.push_back(v);
  return out;
}

std::vector<int64_t> bytes_of(const std::string& s) {
  std::vector<int64_t> out;
  for (char c : s) out.push_back(static_cast<uint8_t>(c));
  return out;
}

std::vector<int64_t> L(std::initializer_list<int64_t> v) { return v; }
int64_t c(char ch) { return static_cast<uint8_t>(ch); }

}  // namespace

TEST_CASE("TokenDataset Pack: one stream with '\\n' after each document, windows of T+1 overlapping by one", "[text]") {
  const std::vector<std::string> docs{"abc", "de"};  // stream "abc\nde\n", 7 bytes
  SECTION("T = 2 divides the stream's 6 targets") {
    TokenDataset ds(docs, 2, TextPacking::Pack);
    CHECK(ds.size() == 3);
    CHECK(ds.num_sequences() == 3);
    CHECK(ds.sample_shape() == Shape{2});
    CHECK(ds.real_tokens() == 6);
    const std::vector<Sample> s = all_samples(ds);
    CHECK(s[0] == Sample{L({c('a'), c('b')}), L({c('b'), c('c')})});
    CHECK(s[1] == Sample{L({c('c'), c('\n')}), L({c('\n'), c('d')})});
    CHECK(s[2] == Sample{L({c('d'), c('e')}), L({c('e'), c('\n')})});
  }
  SECTION("T = 4: the final partial sequence keeps its last byte as input, pads with 0 and ignores") {
    TokenDataset ds(docs, 4, TextPacking::Pack);
    REQUIRE(ds.size() == 2);
    CHECK(ds.real_tokens() == 6);
    const std::vector<Sample> s = all_samples(ds);
    CHECK(s[0] == Sample{L({c('a'), c('b'), c('c'), c('\n')}), L({c('b'), c('c'), c('\n'), c('d')})});
    CHECK(s[1] == Sample{L({c('d'), c('e'), c('\n'), 0}), L({c('e'), c('\n'), -1, -1})});
  }
  SECTION("T = 5: the last window would hold one byte (no target) and is not created") {
    // Stream of 7 bytes: windows at 0 (6 bytes) and 5 (2 bytes); T = 6 leaves one window only.
    CHECK(TokenDataset(docs, 5, TextPacking::Pack).size() == 2);
    TokenDataset six(docs, 6, TextPacking::Pack);
    CHECK(six.size() == 1);
    CHECK(all_samples(six)[0] == Sample{bytes_of("abc\nde"), bytes_of("bc\nde\n")});
  }
}

TEST_CASE("TokenDataset Pad: documents alone, chunks of T+1 overlapping by one, short ones padded", "[text]") {
  const std::vector<std::string> docs{"abcde", "x", "", "pq"};
  TokenDataset ds(docs, 2, TextPacking::Pad);
  // "abcde": windows "abc", "cde"; "x" and "" give nothing; "pq" one window of 2 bytes.
  REQUIRE(ds.size() == 3);
  CHECK(ds.real_tokens() == 4 + 1);
  const std::vector<Sample> s = all_samples(ds);
  CHECK(s[0] == Sample{L({c('a'), c('b')}), L({c('b'), c('c')})});
  CHECK(s[1] == Sample{L({c('c'), c('d')}), L({c('d'), c('e')})});
  CHECK(s[2] == Sample{L({c('p'), c('q')}), L({c('q'), -1})});
  // T = 4: "abcde" is exactly one window of T + 1; "pq" is padded with x = 0 and y = -1.
  const std::vector<Sample> wide = all_samples(TokenDataset(docs, 4, TextPacking::Pad));
  REQUIRE(wide.size() == 2);
  CHECK(wide[0] == Sample{bytes_of("abcd"), bytes_of("bcde")});
  CHECK(wide[1] == Sample{L({c('p'), c('q'), 0, 0}), L({c('q'), -1, -1, -1})});
}

TEST_CASE("TokenDataset matches the naive windows for random documents and block sizes", "[text]") {
  std::mt19937 rng(16);
  for (int trial = 0; trial < 60; ++trial) {
    std::vector<std::string> docs(std::uniform_int_distribution<int>(1, 6)(rng));
    for (std::string& d : docs) {
      d.resize(std::uniform_int_distribution<size_t>(0, 20)(rng));
      for (char& ch : d) ch = static_cast<char>(std::uniform_int_distribution<int>(0, 255)(rng));  // any byte
    }
    const int64_t T = std::uniform_int_distribution<int64_t>(1, 9)(rng);
    INFO("trial " << trial << ", T = " << T << ", " << docs.size() << " documents");
    const std::vector<Sample> pack = naive_pack(docs, T);
    if (pack.empty()) {  // one empty document: the stream "\n" has no target
      CHECK_THROWS_WITH(TokenDataset(docs, T, TextPacking::Pack), Contains("give no sample in Pack mode"));
      continue;
    }
    TokenDataset p(docs, T, TextPacking::Pack);
    const std::vector<Sample> got = all_samples(p);
    CHECK(got == pack);
    // Every next-byte target of the stream appears exactly once, in order.
    std::string stream;
    for (const std::string& d : docs) stream += d + "\n";
    const std::vector<int64_t> want_targets = bytes_of(stream.substr(1));
    CHECK(real_targets(got) == want_targets);
    CHECK(p.real_tokens() == static_cast<int64_t>(want_targets.size()));

    const std::vector<Sample> pad = naive_pad(docs, T);
    if (pad.empty()) {
      CHECK_THROWS_WITH(TokenDataset(docs, T, TextPacking::Pad), Contains("give no sample in Pad mode"));
      continue;
    }
    TokenDataset q(docs, T, TextPacking::Pad);
    const std::vector<Sample> got_pad = all_samples(q);
    CHECK(got_pad == pad);
    std::vector<int64_t> doc_targets;
    for (const std::string& d : docs)
      if (d.size() >= 2) {
        const std::vector<int64_t> t = bytes_of(d.substr(1));
        doc_targets.insert(doc_targets.end(), t.begin(), t.end());
      }
    CHECK(real_targets(got_pad) == doc_targets);
    CHECK(q.real_tokens() == static_cast<int64_t>(doc_targets.size()));
  }
}

TEST_CASE("TokenDataset block-size edge cases and bad input", "[text]") {
  SECTION("T = 1: one sample per target, x = s[i], y = s[i+1]") {
    TokenDataset ds({"hey"}, 1, TextPacking::Pack);  // "hey\n"
    REQUIRE(ds.size() == 3);
    const std::vector<Sample> s = all_samples(ds);
    CHECK(s[0] == Sample{L({c('h')}), L({c('e')})});
    CHECK(s[2] == Sample{L({c('y')}), L({c('\n')})});
    TokenDataset pad({"hey", "a"}, 1, TextPacking::Pad);
    CHECK(pad.size() == 2);
    CHECK(pad.real_tokens() == 2);
  }
  SECTION("T far beyond the text: one padded sample") {
    TokenDataset ds({"ab"}, 1000, TextPacking::Pack);  // "ab\n"
    REQUIRE(ds.size() == 1);
    CHECK(ds.real_tokens() == 2);
    const Sample s = all_samples(ds)[0];
    CHECK(std::count(s.y.begin(), s.y.end(), -1) == 998);
    CHECK(std::count(s.x.begin(), s.x.end(), 0) == 997);
  }
  SECTION("bad block sizes and texts without a sample") {
    CHECK_THROWS_WITH(TokenDataset({"abc"}, 0, TextPacking::Pack), Contains("block size must be >= 1, got 0"));
    CHECK_THROWS_WITH(TokenDataset({"abc"}, -3, TextPacking::Pad), Contains("block size must be >= 1, got -3"));
    CHECK_THROWS_WITH(TokenDataset({}, 4, TextPacking::Pack), Contains("0 documents (0 bytes) give no sample"));
    CHECK_THROWS_WITH(TokenDataset({""}, 4, TextPacking::Pack), Contains("give no sample in Pack mode"));
    CHECK(TokenDataset({"", ""}, 4, TextPacking::Pack).size() == 1);  // "\n\n": one target
    CHECK_THROWS_WITH(TokenDataset({"a", "", "b"}, 4, TextPacking::Pad),
                      Contains("give no sample in Pad mode: a sample needs at least 2 consecutive bytes of one "
                               "document"));
  }
}

TEST_CASE("TokenDataset get_batch of chosen indices; out-of-range indices throw", "[text]") {
  const std::vector<std::string> docs{"the quick brown fox", "jumps"};
  TokenDataset ds(docs, 5, TextPacking::Pack);
  const std::vector<Sample> naive = naive_pack(docs, 5);
  REQUIRE(ds.size() == static_cast<int64_t>(naive.size()));
  const std::vector<int64_t> idx{3, 0, 3, ds.size() - 1};
  const Batch b = ds.get_batch(idx);
  CHECK(b.x.shape() == Shape{4, 5});
  CHECK(b.size() == 4);  // samples, not targets
  const std::vector<int64_t> x = b.x.to_vector<int64_t>(), y = b.y.to_vector<int64_t>();
  for (size_t i = 0; i < idx.size(); ++i) {
    const Sample& want = naive[static_cast<size_t>(idx[i])];
    const auto row = static_cast<ptrdiff_t>(i) * 5;
    CHECK(std::vector<int64_t>(x.begin() + row, x.begin() + row + 5) == want.x);
    CHECK(std::vector<int64_t>(y.begin() + row, y.begin() + row + 5) == want.y);
  }
  const Batch none = ds.get_batch(std::vector<int64_t>{});
  CHECK(none.size() == 0);
  CHECK(none.x.shape() == Shape{0, 5});
  const std::string range = "out of range [0, " + std::to_string(ds.size()) + ")";
  CHECK_THROWS_WITH(ds.get_batch(std::vector<int64_t>{0, ds.size()}),
                    Contains("index " + std::to_string(ds.size()) + " " + range));
  CHECK_THROWS_WITH(ds.get_batch(std::vector<int64_t>{-1}), Contains("index -1 " + range));
}

TEST_CASE("target_counts and unigram_loss against a naive computation", "[text]") {
  const std::vector<std::string> train_docs{"aaab", "abba", "c\xff"}, val_docs{"abz", "ba"};
  for (TextPacking mode : {TextPacking::Pack, TextPacking::Pad}) {
    const TokenDataset train(train_docs, 3, mode), val(val_docs, 2, mode);
    // Naive: the real targets from the naive windows, a 256-bin histogram, Laplace, mean -log p.
    const auto naive = [&](const std::vector<std::string>& d, int64_t T) {
      return real_targets(mode == TextPacking::Pack ? naive_pack(d, T) : naive_pad(d, T));
    };
    const std::vector<int64_t> tt = naive(train_docs, 3), vt = naive(val_docs, 2);
    std::array<int64_t, 256> hist{};
    for (int64_t v : tt) ++hist[static_cast<size_t>(v)];
    CHECK(train.target_counts() == hist);
    double want = 0.0;
    for (int64_t v : vt) {
      int64_t n = 0;
      for (int64_t u : tt) n += u == v ? 1 : 0;
      want -= std::log((static_cast<double>(n) + 1.0) / (static_cast<double>(tt.size()) + 256.0));
    }
    want /= static_cast<double>(vt.size());
    CHECK(unigram_loss(train, val) == Approx(want).epsilon(1e-12));
  }
  // With no training counts every byte has p = 1/256: log(256) nats whatever the validation bytes.
  std::array<int64_t, 256> zero{}, some{};
  some[7] = 3;
  some[200] = 1;
  CHECK(unigram_loss(zero, some) == Approx(std::log(256.0)).epsilon(1e-15));
  CHECK_THROWS_WITH(unigram_loss(some, zero), Contains("no validation targets"));
  std::array<int64_t, 256> negative{};
  negative[65] = -1;
  CHECK_THROWS_WITH(unigram_loss(negative, some), Contains("negative count for byte 65"));
}

TEST_CASE("split_fortunes cuts at lines that are exactly %", "[text]") {
  CHECK(split_fortunes("one\n%\ntwo\nlines\n%\n") == std::vector<std::string>{"one\n", "two\nlines\n"});
  CHECK(split_fortunes("%\n\n  \n%\n%\nlast, no newline") == std::vector<std::string>{"last, no newline"});
  CHECK(split_fortunes("a % b\n%%\n % \n%") == std::vector<std::string>{"a % b\n%%\n % \n"});
  CHECK(split_fortunes("").empty());
  CHECK(split_fortunes("\xfe\xff\n%\n\x80") == std::vector<std::string>{"\xfe\xff\n", "\x80"});
}

TEST_CASE("load_fortunes reads regular non-.dat files in name order and splits by file", "[text]") {
  namespace fs = std::filesystem;
  test::TempDir dir;
  test::write_bytes(dir.file("b"), "one\n%\ntwo\nlines\n%\n\n%\n");
  test::write_bytes(dir.file("a"), "alpha\n%\nbeta");
  test::write_bytes(dir.file("d"), "\xff\xfe not utf-8\n");
  test::write_bytes(dir.file("a.dat"), std::string("\x00\x00\x00\x02%\n", 6));
  test::write_bytes(dir.file("empty"), "");
  test::write_bytes(dir.file("blank"), "%\n \n%\n");
  fs::create_symlink(dir.file("b"), dir.file("b.u8"));
  fs::create_directory(dir.file("sub"));
  test::write_bytes(dir.file("sub/c"), "nested\n");

  // Files with documents, by name: a (0), b (1), d (2).
  const TextCorpus two = load_fortunes(dir.path().string(), 2);
  CHECK(two.val_files == std::vector<std::string>{"a", "d"});
  CHECK(two.train_files == std::vector<std::string>{"b"});
  CHECK(two.val_docs == std::vector<std::string>{"alpha\n", "beta", "\xff\xfe not utf-8\n"});
  CHECK(two.train_docs == std::vector<std::string>{"one\n", "two\nlines\n"});
  CHECK(two.train_bytes() == 4 + 10);
  CHECK(two.val_bytes() == 6 + 4 + 13);

  const TextCorpus eight = load_fortunes(dir.path().string());  // default: every 8th file, from the first
  CHECK(eight.val_files == std::vector<std::string>{"a"});
  CHECK(eight.train_files == std::vector<std::string>{"b", "d"});
  const TextCorpus again = load_fortunes(dir.path().string());
  CHECK(again.train_docs == eight.train_docs);
  CHECK(again.val_docs == eight.val_docs);

  CHECK_THROWS_WITH(load_fortunes(dir.path().string(), 1), Contains("val_every must be >= 2, got 1"));
}

TEST_CASE("load_fortunes errors: missing directory, not a directory, no text, one file", "[text]") {
  test::TempDir dir;
  const std::string missing = dir.file("nope");
  CHECK_THROWS_WITH(load_fortunes(missing),
                    Contains(missing + ": no such directory; install Debian's fortunes package (apt-get install "
                                       "fortunes) or point to another directory (ember-train-lm --data DIR)"));
  test::write_bytes(dir.file("file"), "x\n");
  CHECK_THROWS_WITH(load_fortunes(dir.file("file")), Contains(dir.file("file") + " is not a directory"));

  test::TempDir empty;
  CHECK_THROWS_WITH(load_fortunes(empty.path().string()),
                    Contains(empty.path().string() + " holds no fortunes: no text in its 0 regular file(s)"));
  test::write_bytes(empty.file("x.dat"), "%\nnot read\n");
  test::write_bytes(empty.file("nothing"), "%\n\n%\n");
  CHECK_THROWS_WITH(load_fortunes(empty.path().string()),
                    Contains("holds no fortunes: no text in its 1 regular file(s) other than *.dat"));
  test::write_bytes(empty.file("only"), "a fortune\n");
  CHECK_THROWS_WITH(load_fortunes(empty.path().string()), Contains("fortunes in only one file (only)"));
}

TEST_CASE("load_fortunes on the installed fortunes package: split sizes and the unigram baseline", "[text]") {
  if (!std::filesystem::is_directory(kDefaultFortunesDir)) {
    WARN("Debian's fortunes package is not installed (" << kDefaultFortunesDir << "); skipping");
    return;
  }
  const TextCorpus corpus = load_fortunes();
  REQUIRE(!corpus.train_docs.empty());
  REQUIRE(!corpus.val_docs.empty());
  std::set<std::string> train_files(corpus.train_files.begin(), corpus.train_files.end());
  for (const std::string& f : corpus.val_files) CHECK(train_files.count(f) == 0);
  const auto train_bytes = static_cast<double>(corpus.train_bytes());
  const auto val_bytes = static_cast<double>(corpus.val_bytes());
  const double val_fraction = val_bytes / (train_bytes + val_bytes);
  const TokenDataset train(corpus.train_docs, 256, TextPacking::Pack), val(corpus.val_docs, 256, TextPacking::Pack);
  const double loss = unigram_loss(train, val);
  WARN("fortunes: " << corpus.train_files.size() << " train files, " << corpus.train_docs.size() << " documents, "
                    << corpus.train_bytes() << " bytes; " << corpus.val_files.size() << " validation files, "
                    << corpus.val_docs.size() << " documents, " << corpus.val_bytes() << " bytes (" << val_fraction
                    << " of the bytes); unigram loss of validation under training byte frequencies (Pack, T = 256): "
                    << loss << " nats/byte (log 256 = " << std::log(256.0) << ")");
  CHECK(val_fraction > 0.03);
  CHECK(val_fraction < 0.3);
  CHECK(train.real_tokens() == corpus.train_bytes() + static_cast<int64_t>(corpus.train_docs.size()) - 1);
  CHECK(loss > 2.5);
  CHECK(loss < 4.5);
}
