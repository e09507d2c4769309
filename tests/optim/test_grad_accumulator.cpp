/// @file tests/optim/test_grad_accumulator.cpp @brief GradAccumulator behaviour: validation, counting, schedule per optimizer step, skip on non-finite, clipping, the comm hook, the fused path, graph release.
#include <catch2/catch.hpp>

#include "optim/grad_accumulator.h"
#include "optim/sgd.h"
#include "tests/optim/fixtures.h"

using namespace ember;
using namespace ember::test::optim_fixtures;

namespace {

/// Simulates a second, identical rank: the all-reduce doubles the sums and the count. Records calls.
class TwinRankHook final : public optim::CommHook {
 public:
  void before_backward(bool last, int64_t window_count) override {
    flags.push_back(last);
    counts.push_back(window_count);
  }
  int64_t reduce(std::span<Tensor> grads, int64_t local_count) override {
    ++reduces;
    for (Tensor& g : grads) kernels::scale_many(std::span<Tensor>(&g, 1), 2.0);
    if (poison) {
      NoGradGuard ng;
      grads[0].fill_(NAN);
    }
    return 2 * local_count;
  }
  void reduce_touched(std::span<uint8_t> touched) override { touched_seen.assign(touched.begin(), touched.end()); }
  std::vector<uint8_t> touched_seen;
  std::vector<bool> flags;
  std::vector<int64_t> counts;
  int reduces = 0;
  bool poison = false;
};

Tensor micro_loss(nn::Module& m, const Data& d, int64_t begin, int64_t end) {
  return mean_cross_entropy(m.forward(d.rows(d.x, begin, end)), d.rows(d.onehot, begin, end));
}

}  // namespace

TEST_CASE("GradAccumulator validates its configuration and inputs", "[optim]") {
  CoreMLP m(4, 8, 3, 1);
  optim::SGD opt(m.parameters(), {0.1});
  CHECK_THROWS_WITH(optim::GradAccumulator(m, opt, {.accum_steps = 0}), Catch::Contains("accum_steps must be >= 1, got 0"));
  CHECK_THROWS_WITH(optim::GradAccumulator(m, opt, {.accum_steps = 2, .clip_norm = -1.0}),
                    Catch::Contains("clip_norm must be >= 0 (0 = off), got -1"));
  nn::Module empty_model;
  CHECK_THROWS_WITH(optim::GradAccumulator(empty_model, opt), Catch::Contains("the model has no parameters"));
  CoreMLP other(4, 8, 3, 2);
  optim::SGD foreign(other.parameters(), {0.1});
  CHECK_THROWS_WITH(optim::GradAccumulator(m, foreign), Catch::Contains("is not a parameter of the model"));

  optim::GradAccumulator acc(m, opt, {.accum_steps = 2});
  const Data d = make_data(4, 4, 3, 5);
  CHECK_THROWS_WITH(acc.backward(micro_loss(m, d, 0, 2), 0), Catch::Contains("count (loss terms in the micro-batch) must be >= 1, got 0"));
  CHECK_THROWS_WITH(acc.backward(m.forward(d.x), 4), Catch::Contains("loss must be a floating scalar"));
  Tensor no_grad_loss;
  {
    NoGradGuard ng;
    no_grad_loss = micro_loss(m, d, 0, 2);
  }
  CHECK_THROWS_WITH(acc.backward(no_grad_loss, 2), Catch::Contains("does not require grad"));
  CHECK(acc.micro_steps() == 0);

  if (test::has_cuda()) {
    nn::Module split;
    Tensor on_cpu = split.register_parameter("a", zeros({2}));
    split.register_parameter("b", zeros({2}, TensorOptions{}.set_device(Device::cuda())));
    optim::SGD cpu_opt({on_cpu}, {0.1});
    CHECK_THROWS_WITH(optim::GradAccumulator(split, cpu_opt), Catch::Contains("model parameters must be on one device"));
  }
}

TEST_CASE("GradAccumulator counts micro-batches, windows and samples; the schedule advances per optimizer step",
          "[optim]") {
  CoreMLP m(4, 8, 3, 1);
  optim::SGD opt(m.parameters(), {0.4});
  optim::StepLR sched(opt, 1, 0.5);
  optim::GradAccumulator acc(m, opt, {.accum_steps = 4}, &sched);
  const Data d = make_data(30, 4, 3, 2);
  CHECK_FALSE(acc.flush());  // nothing pending
  int64_t begin = 0;
  std::vector<bool> ended;
  for (int64_t count : {3, 2, 3, 1, 3, 3}) {
    ended.push_back(acc.backward(micro_loss(m, d, begin, begin + count), count));
    begin += count;
  }
  CHECK(ended == std::vector<bool>{false, false, false, true, false, false});
  CHECK(acc.micro_steps() == 6);
  CHECK(acc.optimizer_steps() == 1);
  CHECK(acc.window_count() == 6);
  CHECK(acc.window_micro_steps() == 2);
  CHECK(acc.last_lr() == 0.4);
  CHECK(opt.lr() == Approx(0.2));
  CHECK(sched.last_step() == 1);
  CHECK(acc.flush());  // the short final window
  CHECK(acc.optimizer_steps() == 2);
  CHECK(acc.window_count() == 0);
  CHECK(opt.lr() == Approx(0.1));
  CHECK(m.windows_finished == 2);
  CHECK_FALSE(acc.flush());
  for (const Tensor& p : m.parameters())
    for (float g : p.grad().to_vector<float>()) REQUIRE(g == 0.0f);  // zeroed at the boundary
  CHECK_THROWS_WITH(acc.restore_counters(-1, 0, 0), Catch::Contains("counts must be >= 0"));
  acc.restore_counters(40, 10, 1);
  CHECK(acc.micro_steps() == 40);
  CHECK(acc.skipped_steps() == 1);
}

TEST_CASE("a non-finite gradient skips the step and leaves weights, optimizer state and schedule untouched",
          "[optim]") {
  CoreMLP m(4, 8, 3, 1);
  optim::SGD opt(m.parameters(), {0.1, 0.9});
  optim::StepLR sched(opt, 1, 0.5);
  optim::GradAccumulator acc(m, opt, {.accum_steps = 2}, &sched);
  TwinRankHook hook;
  acc.set_comm_hook(&hook);
  const Data d = make_data(12, 4, 3, 3);
  acc.backward(micro_loss(m, d, 0, 3), 3);
  acc.backward(micro_loss(m, d, 3, 6), 3);  // one good step: momentum buffers exist now
  const auto weights = values_of(m);
  const auto state = opt.state_dict();
  hook.poison = true;
  acc.backward(micro_loss(m, d, 6, 9), 3);
  CHECK(acc.backward(micro_loss(m, d, 9, 12), 3));
  CHECK(acc.skipped_steps() == 1);
  CHECK(acc.optimizer_steps() == 1);
  CHECK(acc.last_step_skipped());
  CHECK(std::isnan(acc.last_grad_norm()));
  CHECK(max_rel_diff(values_of(m), weights) == 0.0);
  const auto state_after = opt.state_dict();
  REQUIRE(state_after.size() == state.size());
  for (size_t i = 0; i < state.size(); ++i) CHECK(state_after[i].second.to_vector<double>() == state[i].second.to_vector<double>());
  CHECK(sched.last_step() == 1);
  for (const Tensor& p : m.parameters())
    for (float g : p.grad().to_vector<float>()) REQUIRE(g == 0.0f);  // the bad window is discarded
  // Training continues normally.
  hook.poison = false;
  acc.backward(micro_loss(m, d, 0, 3), 3);
  acc.backward(micro_loss(m, d, 3, 6), 3);
  CHECK(acc.optimizer_steps() == 2);
  CHECK_FALSE(acc.last_step_skipped());
  CHECK(max_rel_diff(values_of(m), weights) > 0.0);
  // The snapshot taken before the skipped window is a copy: the good step changed the live momentum
  // buffers but not it (so the equality above compared two different moments of the state).
  const auto state_later = opt.state_dict();
  bool momentum_moved = false;
  for (size_t i = 0; i < state.size(); ++i)
    if (state[i].first.find("momentum_buffer") != std::string::npos)
      momentum_moved = momentum_moved || state_later[i].second.to_vector<double>() != state[i].second.to_vector<double>();
  CHECK(momentum_moved);
}

TEST_CASE("Optimizer::state_dict returns copies: writing to them leaves the optimizer unchanged", "[optim]") {
  CoreMLP m(4, 8, 3, 1);
  optim::SGD opt(m.parameters(), {0.1, 0.9});
  optim::GradAccumulator acc(m, opt, {.accum_steps = 1});
  const Data d = make_data(6, 4, 3, 3);
  acc.backward(micro_loss(m, d, 0, 6), 6);
  const auto before = opt.state_dict();
  NamedTensors scratch = opt.state_dict();
  for (auto& [name, t] : scratch) t.fill_(123.0);
  const auto after = opt.state_dict();
  REQUIRE(after.size() == before.size());
  for (size_t i = 0; i < before.size(); ++i) CHECK(after[i].second.to_vector<double>() == before[i].second.to_vector<double>());
}

TEST_CASE("the comm hook sees the sums and the count, and is armed on the last micro-batch only", "[optim]") {
  CoreMLP single(4, 8, 3, 1), twin(4, 8, 3, 1);
  RecordingOptimizer rec_single(single.parameters()), rec_twin(twin.parameters());
  optim::GradAccumulator a(single, rec_single, {.accum_steps = 3}), b(twin, rec_twin, {.accum_steps = 3});
  TwinRankHook hook;
  b.set_comm_hook(&hook);
  const Data d = make_data(9, 4, 3, 4);
  for (int64_t k = 0; k < 3; ++k) {
    a.backward(micro_loss(single, d, 3 * k, 3 * k + 3), 3);
    b.backward(micro_loss(twin, d, 3 * k, 3 * k + 3), 3);
  }
  CHECK(hook.flags == std::vector<bool>{false, false, true});
  CHECK(hook.counts == std::vector<int64_t>{3, 6, 9});  // the window's samples so far, this micro-batch included
  CHECK(hook.reduces == 1);
  // Two identical ranks: the global mean equals the local mean (exactly: x2 and /18 vs /9 in binary).
  CHECK(max_rel_diff(rec_twin.seen[0], rec_single.seen[0]) == 0.0);
}

TEST_CASE("clipping scales the mean gradient by max_norm / (norm + 1e-6) when the norm exceeds it", "[optim]") {
  CoreMLP ref(4, 8, 3, 1), m(4, 8, 3, 1);
  const Data d = make_data(6, 4, 3, 5);
  micro_loss(ref, d, 0, 6).backward();
  const auto g = grads_of(ref);
  double sq = 0;
  for (const Tensor& t : g)
    for (double v : t.to_vector<double>()) sq += v * v;
  const double norm = std::sqrt(sq);
  for (double clip : {norm / 4, norm * 2}) {
    CoreMLP model(4, 8, 3, 1);
    RecordingOptimizer rec(model.parameters());
    optim::GradAccumulator acc(model, rec, {.accum_steps = 2, .clip_norm = clip});
    acc.backward(micro_loss(model, d, 0, 3), 3);
    acc.backward(micro_loss(model, d, 3, 6), 3);
    CHECK(acc.last_grad_norm() == Approx(norm).epsilon(1e-5));  // reported before clipping
    const double factor = clip < norm ? clip / (norm + 1e-6) : 1.0;
    std::vector<Tensor> want;
    for (const Tensor& t : g) want.push_back(t * factor);
    CHECK(max_rel_diff(rec.seen[0], want) < 1e-5);  // reordered float32 sums (see test_accumulation_equivalence)
  }
  (void)m;
}

TEST_CASE("with clipping and skipping off the scale is folded into the optimizer step", "[optim]") {
  CoreMLP a(4, 8, 3, 1), b(4, 8, 3, 1);
  optim::SGD opt_a(a.parameters(), {0.1, 0.9}), opt_b(b.parameters(), {0.1, 0.9});
  optim::GradAccumulator fused(a, opt_a, {.accum_steps = 2, .skip_non_finite = false});
  optim::GradAccumulator two_pass(b, opt_b, {.accum_steps = 2});
  CHECK(fused.fused_window_end());
  CHECK_FALSE(two_pass.fused_window_end());
  const Data d = make_data(18, 4, 3, 6);
  for (int64_t k = 0; k < 6; ++k) {
    fused.backward(micro_loss(a, d, 3 * k, 3 * k + 3), 3);
    two_pass.backward(micro_loss(b, d, 3 * k, 3 * k + 3), 3);
    if (k % 2 == 1) CHECK(fused.last_grad_norm() == Approx(two_pass.last_grad_norm()).epsilon(1e-6));
  }
  // g * (1/count) read inside the update vs written back first: identical float32 products.
  CHECK(max_rel_diff(values_of(a), values_of(b)) < 1e-6);
  CHECK(fused.optimizer_steps() == 3);
}

TEST_CASE("the graph and activations are released by each micro-batch backward", "[optim]") {
  CoreMLP m(4, 8, 3, 1);
  optim::SGD opt(m.parameters(), {0.1});
  optim::GradAccumulator acc(m, opt, {.accum_steps = 4});
  const Data d = make_data(4, 4, 3, 7);
  std::weak_ptr<Node> hidden_node;
  Tensor loss;
  {
    Tensor logits = m.forward(d.x);
    hidden_node = logits.grad_fn();
    loss = mean_cross_entropy(logits, d.onehot);
  }
  REQUIRE_FALSE(hidden_node.expired());
  acc.backward(loss, 4);
  CHECK(hidden_node.expired());             // nothing holds the graph below the loss any more
  CHECK(loss.grad_fn()->released);          // the loss's own node has dropped its saved tensors
  CHECK(loss.grad_fn()->next_edges.empty());
}

TEST_CASE("an empty micro-batch counts toward the window without changing its gradient", "[optim]") {
  CoreMLP with_empty(4, 8, 3, 2), flushed(4, 8, 3, 2);
  RecordingOptimizer rec_empty(with_empty.parameters()), rec_flushed(flushed.parameters());
  optim::GradAccumulator a(with_empty, rec_empty, {.accum_steps = 3}), b(flushed, rec_flushed, {.accum_steps = 3});
  TwinRankHook hook;
  a.set_comm_hook(&hook);
  const Data d = make_data(6, 4, 3, 5);
  for (int64_t k = 0; k < 2; ++k) {
    CHECK_FALSE(a.backward(micro_loss(with_empty, d, 3 * k, 3 * k + 3), 3));
    CHECK_FALSE(b.backward(micro_loss(flushed, d, 3 * k, 3 * k + 3), 3));
  }
  CHECK(a.empty_micro_batch());  // the third micro-step ends the window, as on the ranks that had samples
  CHECK(b.flush());
  CHECK(hook.flags == std::vector<bool>{false, false, true});
  CHECK(a.micro_steps() == 3);
  CHECK(a.optimizer_steps() == 1);
  // The twin hook doubles sums and count: the mean is the same, exactly (powers of two).
  REQUIRE(rec_empty.seen.size() == 1);
  CHECK(max_rel_diff(rec_empty.seen[0], rec_flushed.seen[0]) == 0.0);

  // A window in which no rank had a sample cannot be normalized.
  CoreMLP lonely(4, 8, 3, 2);
  RecordingOptimizer rec(lonely.parameters());
  optim::GradAccumulator c(lonely, rec, {.accum_steps = 1});
  CHECK_THROWS_WITH(c.empty_micro_batch(), Catch::Contains("no samples"));
}

namespace {

/// Two parameters w and u; a micro-batch's loss is sum(w * x), plus sum(u * x) when `use_u`.
struct TwoParams {
  nn::Module m;
  Tensor w = m.register_parameter("w", from_vector({1.0, -2.0, 0.5}, {3}, TensorOptions{}.set_dtype(DType::f64)));
  Tensor u = m.register_parameter("u", from_vector({0.25, 4.0, -1.0}, {3}, TensorOptions{}.set_dtype(DType::f64)));
  Tensor loss(const std::vector<double>& x, bool use_u) const {
    const Tensor xt = from_vector(x, {3}, TensorOptions{}.set_dtype(DType::f64));
    Tensor l = (w * xt).sum();
    return use_u ? l + (u * xt).sum() : l;
  }
};

}  // namespace

TEST_CASE("a parameter no backward reached in a window gets no update (set_to_none), else a zero-gradient one",
          "[optim]") {
  // SGD, lr 0.1, momentum 0.9, weight decay 0.5 (PyTorch's rule: g += wd * p; buf = g at the first step,
  // else 0.9 buf + g; p -= lr * buf). Window 1 (2 micro-batches of 1 sample) never uses u; window 2 does.
  const std::vector<double> x1{1.0, 2.0, 3.0}, x2{-1.0, 0.5, 2.0}, x3{0.5, 0.5, -4.0};
  const std::vector<double> u0{0.25, 4.0, -1.0};
  for (const bool set_to_none : {true, false}) {
    CAPTURE(set_to_none);
    TwoParams t;
    optim::SGD opt(t.m.parameters(), {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.5});
    TwinRankHook hook;
    optim::GradAccumulator acc(t.m, opt, {.accum_steps = 2, .set_to_none = set_to_none});
    acc.set_comm_hook(&hook);
    // A .grad for u exists from the start (as DataParallel's bucket views do): it is zero, not "None".
    t.u.set_grad(zeros({3}, TensorOptions{}.set_dtype(DType::f64)));
    acc.backward(t.loss(x1, false), 1);
    REQUIRE(acc.backward(t.loss(x2, false), 1));
    // The twin hook doubles sums and count: the mean gradient of w is (x1 + x2) / 2; u's is 0.
    std::vector<double> u1 = u0;
    std::vector<double> buf_u(3, 0.0);
    if (!set_to_none) {
      for (size_t i = 0; i < 3; ++i) {
        buf_u[i] = 0.5 * u0[i];  // zero gradient + weight decay
        u1[i] = u0[i] - 0.1 * buf_u[i];
      }
    }
    const auto got_u1 = t.u.to_vector<double>();
    for (size_t i = 0; i < 3; ++i) CHECK(got_u1[i] == Approx(u1[i]).epsilon(1e-15));
    if (set_to_none) {
      CHECK(hook.touched_seen == std::vector<uint8_t>{1, 0});
      const NamedTensors state = opt.state_dict(t.m.named_parameters());
      const bool has_u_buf = std::any_of(state.begin(), state.end(), [](const auto& kv) { return kv.first == "u.momentum_buffer"; });
      CHECK_FALSE(has_u_buf);  // no momentum buffer was started for u
      REQUIRE(t.u.grad().defined());  // its buffer is back for the next window
    }
    // Window 2 uses u in its second micro-batch: a fresh momentum buffer when set_to_none, else the running one.
    acc.backward(t.loss(x1, false), 1);
    REQUIRE(acc.backward(t.loss(x3, true), 1));
    const auto got_u2 = t.u.to_vector<double>();
    for (size_t i = 0; i < 3; ++i) {
      const double g = x3[i] / 2.0 + 0.5 * u1[i];
      const double buf = set_to_none ? g : 0.9 * buf_u[i] + g;
      CHECK(got_u2[i] == Approx(u1[i] - 0.1 * buf).epsilon(1e-14));
    }
  }
}

namespace {

/// Class-index targets for Data's rows: row i's class from its one-hot row, or -1 (ignored) where
/// `ignored(i)`.
template <class Ignored>
Tensor index_targets(const Data& d, Ignored ignored) {
  const int64_t n = d.onehot.size(0), classes = d.onehot.size(1);
  const auto oh = d.onehot.to_vector<float>();
  std::vector<int64_t> y(static_cast<size_t>(n), -1);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < classes && !ignored(i); ++c)
      if (oh[static_cast<size_t>(i * classes + c)] == 1.0f) y[static_cast<size_t>(i)] = c;
  return from_vector(y, {n}, TensorOptions{}.set_dtype(DType::i64));
}

Tensor ce(const Tensor& logits, const Tensor& y, Reduction r) {
  return nn::functional::cross_entropy(logits, y, nn::functional::CrossEntropyOptions{.reduction = r, .ignore_index = -1});
}

}  // namespace

TEST_CASE("backward_sum: summed token losses with count_not_ignored give the large batch's mean gradient; a "
          "micro-batch of padding only counts as a micro-step",
          "[optim][grad_accumulator][accumulation]") {
  // 12 rows in 3 micro-batches [0, 4), [4, 8), [8, 12); rows 4..7 are all ignored (count 0), rows 1, 9, 10
  // too: real counts 3, 0, 2.
  const Data d = make_data(12, 4, 3, 9);
  const Tensor y = index_targets(d, [](int64_t i) { return (i >= 4 && i < 8) || i == 1 || i == 9 || i == 10; });
  // The reference: one backward of the mean over the 5 real rows of all 12 (a naive single pass).
  CoreMLP ref(4, 8, 3, 3);
  ce(ref.forward(d.x), y, Reduction::Mean).backward();
  const std::vector<Tensor> want = grads_of(ref);

  CoreMLP summed(4, 8, 3, 3), meaned(4, 8, 3, 3);
  RecordingOptimizer rec_sum(summed.parameters()), rec_mean(meaned.parameters());
  optim::GradAccumulator a(summed, rec_sum, {.accum_steps = 3}), b(meaned, rec_mean, {.accum_steps = 3});
  std::vector<int64_t> counts;
  double loss_sum = 0.0;
  for (int64_t k = 0; k < 3; ++k) {
    const Tensor yk = y.slice(0, 4 * k, 4 * k + 4);
    const int64_t n = nn::functional::count_not_ignored(yk, -1);
    counts.push_back(n);
    const Tensor l = ce(summed.forward(d.rows(d.x, 4 * k, 4 * k + 4)), yk, Reduction::Sum);
    loss_sum += l.item();
    CHECK(a.backward_sum(l, n) == (k == 2));
    // backward(mean, count) needs count >= 1 (the mean of no terms is NaN): the empty one is an empty micro-step.
    if (n == 0) {
      CHECK_FALSE(b.empty_micro_batch());
    } else {
      CHECK(b.backward(ce(meaned.forward(d.rows(d.x, 4 * k, 4 * k + 4)), yk, Reduction::Mean), n) == (k == 2));
    }
  }
  CHECK(counts == std::vector<int64_t>{3, 0, 2});
  CHECK(a.micro_steps() == 3);
  CHECK(a.optimizer_steps() == 1);
  REQUIRE(rec_sum.seen.size() == 1);
  REQUIRE(rec_mean.seen.size() == 1);
  // float32: the accumulated sums and the single pass add the same 5 per-row gradients in other orders
  // (and the mean path scales by 1/n inside, then by n and 1/5), a few ulps (6e-8) of sums of <= 5 terms
  // of similar size; 1e-5 of each tensor's scale leaves a factor of ~30.
  CHECK(max_rel_diff(rec_sum.seen[0], want) < 1e-5);
  CHECK(max_rel_diff(rec_mean.seen[0], want) < 1e-5);
  CHECK(a.last_loss_sum() == Approx(loss_sum).epsilon(1e-6));  // the device sum of the 3 micro-batches' sums
  CHECK(b.last_loss_sum() == Approx(loss_sum).epsilon(1e-6));
}

TEST_CASE("backward_sum validates its inputs; a window of padding only cannot be normalized",
          "[optim][grad_accumulator][accumulation]") {
  CoreMLP m(4, 8, 3, 1);
  RecordingOptimizer rec(m.parameters());
  optim::GradAccumulator acc(m, rec, {.accum_steps = 2});
  const Data d = make_data(4, 4, 3, 5);
  const Tensor none = index_targets(d, [](int64_t) { return true; });
  const Tensor all = index_targets(d, [](int64_t) { return false; });
  CHECK_THROWS_WITH(acc.backward_sum(ce(m.forward(d.x), all, Reduction::Sum), -1),
                    Catch::Contains("backward_sum: count (loss terms in the micro-batch) must be >= 0, got -1"));
  CHECK_THROWS_WITH(acc.backward_sum(ce(m.forward(d.x), all, Reduction::None), 4),
                    Catch::Contains("backward_sum: loss must be a floating scalar (the sum over the micro-batch)"));
  Tensor no_grad_loss;
  {
    NoGradGuard ng;
    no_grad_loss = ce(m.forward(d.x), all, Reduction::Sum);
  }
  CHECK_THROWS_WITH(acc.backward_sum(no_grad_loss, 4), Catch::Contains("backward_sum: the loss"));
  CHECK_THROWS_WITH(acc.backward_sum(no_grad_loss, 4), Catch::Contains("does not require grad"));
  CHECK(acc.micro_steps() == 0);
  // Two micro-batches of padding only: the window ends with a count of 0.
  const Tensor l0 = ce(m.forward(d.x), none, Reduction::Sum);
  CHECK(l0.item() == 0.0);
  CHECK_FALSE(acc.backward_sum(l0, 0));
  CHECK_THROWS_WITH(acc.backward_sum(ce(m.forward(d.x), none, Reduction::Sum), 0), Catch::Contains("no samples or tokens"));
}
