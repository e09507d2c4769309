/// @file tests/optim/test_accumulation_equivalence.cpp @brief Accumulated vs large-batch gradients and weights (MLP; full and ragged windows), and the seed's loss / accum_iter recipe failing the ragged cases.
#include <catch2/catch.hpp>

#include "optim/adamw.h"
#include "optim/grad_accumulator.h"
#include "optim/sgd.h"
#include "tests/optim/fixtures.h"

using namespace ember;
using namespace ember::test::optim_fixtures;

namespace {

// Tolerances (float32, machine epsilon 6e-8).
// Gradients: the accumulated window sums the same per-sample terms as the large batch, only grouped
// differently (per micro-batch GEMM sums, then the in-place accumulate) and scaled by 1/total at the end
// instead of 1/B inside the loss backward. Each element is a sum of <= 32 terms, so the reordering error
// is a few ulps of the largest term; relative to the largest gradient that is ~1e-6. 1e-5 leaves room.
constexpr double kGradTol = 1e-5;
// Weights after 5 SGD(momentum) steps: w changes by lr * (sum of at most 5 gradients), so the gradient
// error enters scaled by lr; relative to max|w| (~0.2) it stays ~1e-6.
constexpr double kSgdWeightTol = 1e-5;
// AdamW divides m by sqrt(v) + eps: an element's step is ~lr * g / (|g| + eps) whatever the size of g,
// so an element whose true gradient is zero up to cancellation (|g| ~ eps = 1e-8; MLP, micro 4 x
// accum 8: w1[144] has g = 2.6e-8 in the first window) takes a step set by rounding, and the two runs'
// roundings (~1e-9 there) move it differently by up to ~lr * dg / eps. Such weights are compared in
// units of lr: measured 4.4e-3 lr; bound 5e-2 lr. All other weights must agree as SGD's do: at most 1%
// of the elements may differ by more than kSgdWeightTol relative (measured: 4 of 1893, the same weight row).
constexpr double kAdamWWeightTolLr = 5e-2;
constexpr double kAdamWOutlierFraction = 1e-2;

constexpr int64_t kIn = 20, kHidden = 32, kClasses = 5;

using Batches = std::vector<std::pair<int64_t, int64_t>>;

/// Large-batch reference, as PyTorch trains: per batch, zero grads, mean loss backward, step.
/// Returns the gradients each step used.
std::vector<std::vector<Tensor>> train_large(nn::Module& m, optim::Optimizer& opt, const Data& d, const Batches& bs) {
  std::vector<std::vector<Tensor>> grads;
  for (auto [b, e] : bs) {
    opt.zero_grad();
    mean_cross_entropy(m.forward(d.rows(d.x, b, e)), d.rows(d.onehot, b, e)).backward();
    grads.push_back(grads_of(m));
    opt.step();
  }
  return grads;
}

/// Accumulated: micro-batches of `micro` over samples [0, n), windows of `accum`, a short window flushed.
void train_accumulated(nn::Module& m, optim::Optimizer& opt, const Data& d, int64_t n, int64_t micro, int64_t accum,
                       optim::GradAccumulatorOptions o = {}) {
  o.accum_steps = accum;
  optim::GradAccumulator acc(m, opt, o);
  for (int64_t b = 0; b < n; b += micro) {
    const int64_t e = std::min(n, b + micro);
    acc.backward(mean_cross_entropy(m.forward(d.rows(d.x, b, e)), d.rows(d.onehot, b, e)), e - b);
  }
  acc.flush();
}

/// The seed's recipe: loss / accum_iter per micro-batch, plain backward, step every accum_iter
/// micro-batches or at the end of the data. Returns the gradients each step used.
std::vector<std::vector<Tensor>> train_seed_recipe(nn::Module& m, optim::Optimizer& opt, const Data& d, int64_t n,
                                                   int64_t micro, int64_t accum_iter) {
  std::vector<std::vector<Tensor>> grads;
  const int64_t batches = (n + micro - 1) / micro;
  for (int64_t idx = 0; idx < batches; ++idx) {
    const int64_t b = idx * micro, e = std::min(n, b + micro);
    Tensor loss = mean_cross_entropy(m.forward(d.rows(d.x, b, e)), d.rows(d.onehot, b, e));
    (loss / static_cast<double>(accum_iter)).backward();
    if ((idx + 1) % accum_iter == 0 || idx + 1 == batches) {
      grads.push_back(grads_of(m));
      opt.step();
      opt.zero_grad();
    }
  }
  return grads;
}

Batches uniform(int64_t n, int64_t batch) {
  Batches bs;
  for (int64_t b = 0; b < n; b += batch) bs.emplace_back(b, std::min(n, b + batch));
  return bs;
}

struct Case {
  int64_t micro, accum;
};

/// AdamW weights compared as the tolerances above say: the largest difference in units of lr, and the
/// fraction of elements that differ by more than kSgdWeightTol relative to the largest weight.
void check_adamw_weights(const std::vector<Tensor>& a, const std::vector<Tensor>& b, double lr, const char* what) {
  double worst = 0.0, scale = 0.0;
  for (const Tensor& t : b)
    for (double v : t.to_vector<double>()) scale = std::max(scale, std::abs(v));
  int64_t outliers = 0, total = 0;
  for (size_t t = 0; t < a.size(); ++t) {
    const auto va = a[t].to_vector<double>(), vb = b[t].to_vector<double>();
    for (size_t i = 0; i < va.size(); ++i, ++total) {
      const double d = std::abs(va[i] - vb[i]);
      worst = std::max(worst, d);
      outliers += d > kSgdWeightTol * scale;
    }
  }
  INFO(what << ": AdamW weights differ by at most " << worst / lr << " lr; " << outliers << " of " << total
            << " elements by more than " << kSgdWeightTol << " relative");
  CHECK(worst / lr < kAdamWWeightTolLr);
  CHECK(static_cast<double>(outliers) <= kAdamWOutlierFraction * static_cast<double>(total));
}

}  // namespace

TEST_CASE("MLP: accumulated window gradients equal the large batch's", "[optim][accumulation]") {
  for (Case c : {Case{3, 2}, Case{4, 8}}) {
    const int64_t batch = c.micro * c.accum, steps = 5, n = batch * steps;
    INFO("micro " << c.micro << " x accum " << c.accum << " vs batch " << batch);
    const Data d = make_data(n, kIn, kClasses, 11);
    CoreMLP large(kIn, kHidden, kClasses, 3), accumulated(kIn, kHidden, kClasses, 3);
    RecordingOptimizer rec_large(large.parameters()), rec_acc(accumulated.parameters());
    train_large(large, rec_large, d, uniform(n, batch));
    train_accumulated(accumulated, rec_acc, d, n, c.micro, c.accum);
    REQUIRE(rec_acc.seen.size() == static_cast<size_t>(steps));
    for (int s = 0; s < steps; ++s) {
      const double diff = max_rel_diff(rec_acc.seen[static_cast<size_t>(s)], rec_large.seen[static_cast<size_t>(s)]);
      INFO("window " << s << ": max relative gradient difference " << diff);
      CHECK(diff < kGradTol);
    }
  }
}

TEST_CASE("MLP: weights after 5 optimizer steps equal the large batch's (SGD momentum, AdamW)",
          "[optim][accumulation]") {
  constexpr double kLr = 1e-2;
  for (Case c : {Case{3, 2}, Case{4, 8}}) {
    const int64_t batch = c.micro * c.accum, n = batch * 5;
    INFO("micro " << c.micro << " x accum " << c.accum);
    const Data d = make_data(n, kIn, kClasses, 12);
    const std::vector<Tensor> initial = values_of(CoreMLP(kIn, kHidden, kClasses, 4));
    {
      CoreMLP large(kIn, kHidden, kClasses, 4), accumulated(kIn, kHidden, kClasses, 4);
      optim::SGD opt_large(large.parameters(), optim::SGDOptions{0.1, 0.9, 0.0, true, 1e-3});
      optim::SGD opt_acc(accumulated.parameters(), optim::SGDOptions{0.1, 0.9, 0.0, true, 1e-3});
      train_large(large, opt_large, d, uniform(n, batch));
      train_accumulated(accumulated, opt_acc, d, n, c.micro, c.accum);
      const double diff = max_rel_diff(values_of(accumulated), values_of(large));
      INFO("SGD(momentum 0.9, nesterov, wd): max relative weight difference " << diff);
      CHECK(diff < kSgdWeightTol);
      CHECK(max_rel_diff(values_of(accumulated), initial) > 1e-3);  // it trained
    }
    {
      CoreMLP large(kIn, kHidden, kClasses, 4), accumulated(kIn, kHidden, kClasses, 4);
      optim::AdamW opt_large(large.parameters(), optim::AdamWOptions{kLr});
      optim::AdamW opt_acc(accumulated.parameters(), optim::AdamWOptions{kLr});
      train_large(large, opt_large, d, uniform(n, batch));
      train_accumulated(accumulated, opt_acc, d, n, c.micro, c.accum);
      check_adamw_weights(values_of(accumulated), values_of(large), kLr, "MLP");
      CHECK(max_rel_diff(values_of(accumulated), initial) > 1e-3);
    }
  }
}

TEST_CASE("ragged windows are exact; the seed's loss / accum_iter is not", "[optim][accumulation]") {
  SECTION("7 samples, micro 3 x accum 3 (micro-batches 3, 3, 1) == one batch of 7") {
    const Data d = make_data(7, kIn, kClasses, 13);
    CoreMLP large(kIn, kHidden, kClasses, 5), acc_model(kIn, kHidden, kClasses, 5), seed_model(kIn, kHidden, kClasses, 5);
    RecordingOptimizer rl(large.parameters()), ra(acc_model.parameters()), rs(seed_model.parameters());
    train_large(large, rl, d, {{0, 7}});
    train_accumulated(acc_model, ra, d, 7, 3, 3);
    train_seed_recipe(seed_model, rs, d, 7, 3, 3);
    REQUIRE(ra.seen.size() == 1);
    CHECK(max_rel_diff(ra.seen[0], rl.seen[0]) < kGradTol);
    // The seed weights samples 1/9, 1/9, 1/3 instead of 1/7 each.
    const double seed_diff = max_rel_diff(rs.seen[0], rl.seen[0]);
    INFO("seed recipe: max relative gradient difference " << seed_diff);
    CHECK(seed_diff > 1e-2);
  }
  SECTION("8 samples, micro 3 x accum 2 (a full window, then a short one flushed) == batches of 6 and 2") {
    const Data d = make_data(8, kIn, kClasses, 14);
    CoreMLP large(kIn, kHidden, kClasses, 6), acc_model(kIn, kHidden, kClasses, 6), seed_model(kIn, kHidden, kClasses, 6);
    optim::SGD ol(large.parameters(), {0.1, 0.9}), oa(acc_model.parameters(), {0.1, 0.9}),
        os(seed_model.parameters(), {0.1, 0.9});
    const auto g_large = train_large(large, ol, d, {{0, 6}, {6, 8}});
    {
      CoreMLP probe(kIn, kHidden, kClasses, 6);  // gradients of both windows at the same weights
      RecordingOptimizer rp(probe.parameters());
      train_accumulated(probe, rp, d, 8, 3, 2);
      CoreMLP probe_large(kIn, kHidden, kClasses, 6);
      RecordingOptimizer rpl(probe_large.parameters());
      train_large(probe_large, rpl, d, {{0, 6}, {6, 8}});
      REQUIRE(rp.seen.size() == 2);
      CHECK(max_rel_diff(rp.seen[0], rpl.seen[0]) < kGradTol);
      CHECK(max_rel_diff(rp.seen[1], rpl.seen[1]) < kGradTol);
    }
    train_accumulated(acc_model, oa, d, 8, 3, 2);
    CHECK(max_rel_diff(values_of(acc_model), values_of(large)) < kSgdWeightTol);
    // The seed halves the short window's gradient (mean / 2 over a window of one micro-batch).
    const auto g_seed = train_seed_recipe(seed_model, os, d, 8, 3, 2);
    REQUIRE(g_seed.size() == 2);
    CHECK(max_rel_diff(g_seed[0], g_large[0]) < kGradTol);  // its full window happens to be right
    const double seed_diff = max_rel_diff(g_seed[1], g_large[1]);
    INFO("seed recipe, short window: max relative gradient difference " << seed_diff);
    CHECK(seed_diff > 1e-2);
    CHECK(seed_diff == Approx(0.5).epsilon(1e-4));
    CHECK(max_rel_diff(values_of(seed_model), values_of(large)) > 1e-3);
  }
}

TEST_CASE("CNN: accumulated gradients and weights after 5 steps equal the large batch's", "[optim][accumulation]") {
  for (Case c : {Case{3, 2}, Case{4, 8}}) {
    const int64_t batch = c.micro * c.accum, n = batch * 5;
    INFO("micro " << c.micro << " x accum " << c.accum << " vs batch " << batch);
    const Data d = make_data(n, 64, kClasses, 15);
    {
      CoreCNN large(kClasses, 7), accumulated(kClasses, 7);
      RecordingOptimizer rl(large.parameters()), ra(accumulated.parameters());
      train_large(large, rl, d, uniform(n, batch));
      train_accumulated(accumulated, ra, d, n, c.micro, c.accum);
      REQUIRE(ra.seen.size() == 5);
      for (size_t s = 0; s < 5; ++s) CHECK(max_rel_diff(ra.seen[s], rl.seen[s]) < kGradTol);
    }
    CoreCNN large(kClasses, 7), sgd_acc(kClasses, 7), large2(kClasses, 7), adamw_acc(kClasses, 7);
    optim::SGD s1(large.parameters(), {0.1, 0.9}), s2(sgd_acc.parameters(), {0.1, 0.9});
    optim::AdamW a1(large2.parameters(), {1e-2}), a2(adamw_acc.parameters(), {1e-2});
    train_large(large, s1, d, uniform(n, batch));
    train_accumulated(sgd_acc, s2, d, n, c.micro, c.accum);
    train_large(large2, a1, d, uniform(n, batch));
    train_accumulated(adamw_acc, a2, d, n, c.micro, c.accum);
    const double sgd_diff = max_rel_diff(values_of(sgd_acc), values_of(large));
    INFO("weights: SGD " << sgd_diff);
    CHECK(sgd_diff < kSgdWeightTol);
    check_adamw_weights(values_of(adamw_acc), values_of(large2), 1e-2, "CNN");
  }
}
