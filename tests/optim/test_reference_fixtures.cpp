/// @file tests/optim/test_reference_fixtures.cpp @brief Ember's accumulated training against recorded PyTorch results (tests/fixtures/accumulation/, scripts/make_reference.py): weights, per-window gradients, optimizer state and BatchNorm statistics, tensor by tensor.
#include <catch2/catch.hpp>

#include <span>

#include "core/grad_mode.h"
#include "optim/grad_accumulator.h"
#include "tests/optim/reference_fixture.h"

using namespace ember;
using namespace ember::test::reference;

namespace {

/// A CommHook for a world of one that records each window's mean gradient (reduce() sees the
/// gradient sums and the sample count before Ember scales, clips or steps) in float64.
class RecordingHook final : public optim::CommHook {
 public:
  int64_t reduce(std::span<Tensor> grads, int64_t local_count) override {
    std::vector<Tensor>& w = windows.emplace_back();
    for (const Tensor& g : grads) w.push_back(g.to(DType::f64) * (1.0 / static_cast<double>(local_count)));
    return local_count;
  }
  void reduce_touched(std::span<uint8_t>) override {}  // one rank: its own marks are the OR
  std::vector<std::vector<Tensor>> windows;
};

/// What the accumulator reported per window.
struct Reported {
  std::vector<double> grad_norm, loss;
};

/// Runs every window of the case through GradAccumulator as one rank (a multi-rank case's micro-batches
/// in their global order, with accum_steps * ranks micro-batches per window): backward(mean loss, count)
/// per micro-batch, flush() for a short window.
Reported run(const Case& c, nn::Module& model, optim::Optimizer& opt, optim::CommHook* hook) {
  const int64_t accum = c.meta_int("accum_steps") * c.meta_int("ranks");
  optim::GradAccumulator acc(model, opt, {.accum_steps = accum, .clip_norm = c.meta_double("clip_norm")});
  acc.set_comm_hook(hook);
  Reported r;
  for (const std::vector<MicroBatch>& window : schedule(c)) {
    int64_t total = 0, k = 0;
    for (const MicroBatch& m : window) {
      total += m.end - m.begin;
      CHECK(acc.backward(micro_loss(model, c, m), m.end - m.begin) == (++k == accum));
    }
    if (k < accum) CHECK(acc.flush());
    r.grad_norm.push_back(acc.last_grad_norm());
    r.loss.push_back(acc.last_loss_sum() / static_cast<double>(total));
  }
  CHECK(acc.optimizer_steps() == static_cast<int64_t>(schedule(c).size()));
  return r;
}

void check_case(const std::string& name, bool record_grads) {
  const Case c = load_case(name);
  INFO("case " << name << " (" << c.meta("description") << "), " << (record_grads ? "with" : "without")
                << " a recording CommHook");
  auto model = make_model(c);
  auto opt = make_optimizer(c, model->parameters());
  RecordingHook hook;
  const Reported r = run(c, *model, *opt, record_grads ? &hook : nullptr);
  const size_t windows = schedule(c).size();
  const Policy policy(c, windows);

  check_module_state(c, *model, policy);
  check_optimizer_state(c, *model, *opt, policy);
  check_window_scalars(c, r.grad_norm, r.loss, policy);
  if (!record_grads) return;
  // Per-window gradients: every parameter of every window.
  const NamedTensors params = model->named_parameters();
  REQUIRE(hook.windows.size() == windows);
  for (size_t w = 0; w < windows; ++w) {
    REQUIRE(hook.windows[w].size() == params.size());
    for (size_t i = 0; i < params.size(); ++i) {
      const std::string key = "grad." + std::to_string(w) + "." + params[i].first;
      const Tensor want = c.tensor(key);
      expect_close_per_tensor(key, hook.windows[w][i], want, policy.for_key(key, want));
    }
  }
}

}  // namespace

TEST_CASE("PyTorch reference: SGD momentum + weight decay, micro 4 x accum 2", "[optim][reference]") {
  check_case("plain", false);
  check_case("plain", true);
}

TEST_CASE("PyTorch reference: ragged micro-batches 3+3+1 per window", "[optim][reference]") {
  check_case("ragged", false);
  check_case("ragged", true);
}

TEST_CASE("PyTorch reference: a short final window ended by flush()", "[optim][reference]") {
  check_case("flush", false);
  check_case("flush", true);
}

TEST_CASE("PyTorch reference: clip_norm active in some windows", "[optim][reference]") {
  check_case("clip", false);
  check_case("clip", true);
}

TEST_CASE("PyTorch reference: AdamW", "[optim][reference]") {
  check_case("adamw", false);
  check_case("adamw", true);
}

TEST_CASE("PyTorch reference: BatchNorm with per-micro-batch running statistics", "[optim][reference][bn]") {
  check_case("bn_micro", false);
  check_case("bn_micro", true);
}

TEST_CASE("PyTorch reference: BatchNorm with window-merged running statistics", "[optim][reference][bn]") {
  check_case("bn_window", false);
  check_case("bn_window", true);
}

TEST_CASE("PyTorch reference: the 3-rank case's micro-batches as 1 rank x accum 6", "[optim][reference]") {
  // The fixture is the large batch over all ranks' micro-batches; one rank accumulating all of them
  // in order must give it too (tests/distributed/mpi/test_mpi_reference.cpp runs the 3 ranks).
  check_case("ranks3", false);
  check_case("ranks3", true);
}

TEST_CASE("PyTorch reference: the 3-rank window-merged BatchNorm case as 1 rank x accum 6", "[optim][reference][bn]") {
  // One rank merging every micro-batch of the window gives the large batch's running statistics over
  // all ranks' samples: what the 3 ranks must reach by merging across ranks at the window end.
  check_case("ranks3_bn_window", false);
  check_case("ranks3_bn_window", true);
}
