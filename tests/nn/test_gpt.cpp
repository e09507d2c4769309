/// @file tests/nn/test_gpt.cpp @brief ember::gpt::GPT (examples/gpt): nanoGPT's names, shapes and init, the tied lm_head, logits / loss / every gradient against the PyTorch twin (tests/fixtures/gpt), errors, dropout, sampling and generate().
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <set>

#include "core/grad_mode.h"
#include "core/safetensors.h"
#include "examples/gpt/gpt.h"
#include "nn/functional.h"
#include "tests/harness/backends.h"
#include "tests/nn/gpt_fixture.h"

using namespace ember;
using namespace ember::test::gpt_fixture;
using ember::test::reference::expect_close_per_tensor;
using ember::test::reference::Tolerance;
using Catch::Contains;

namespace {

/// nanoGPT's named_parameters() for a config, written out from its model.py (ModuleDict transformer with
/// wte, wpe, h.<i> = Block(ln_1, attn(c_attn, c_proj), ln_2, mlp(c_fc, c_proj)), ln_f; lm_head.weight
/// tied to wte, which PyTorch lists once, under its first name), with torch.nn's [out, in] shapes.
std::vector<std::pair<std::string, Shape>> nanogpt_parameters(const gpt::GPTConfig& c) {
  const int64_t C = c.n_embd;
  std::vector<std::pair<std::string, Shape>> p{{"transformer.wte.weight", {c.vocab_size, C}},
                                               {"transformer.wpe.weight", {c.block_size, C}}};
  auto linear = [&](const std::string& name, int64_t in, int64_t out) {
    p.emplace_back(name + ".weight", Shape{out, in});
    if (c.bias) p.emplace_back(name + ".bias", Shape{out});
  };
  auto ln = [&](const std::string& name) {
    p.emplace_back(name + ".weight", Shape{C});
    if (c.bias) p.emplace_back(name + ".bias", Shape{C});
  };
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string h = "transformer.h." + std::to_string(i);
    ln(h + ".ln_1");
    linear(h + ".attn.c_attn", C, 3 * C);
    linear(h + ".attn.c_proj", C, C);
    ln(h + ".ln_2");
    linear(h + ".mlp.c_fc", C, 4 * C);
    linear(h + ".mlp.c_proj", 4 * C, C);
  }
  ln("transformer.ln_f");
  return p;
}

/// Sample mean and standard deviation of a tensor's values.
std::pair<double, double> moments(const Tensor& t) {
  const auto v = t.to_vector<double>();
  double s = 0.0, s2 = 0.0;
  for (double x : v) s += x;
  const double mean = s / static_cast<double>(v.size());
  for (double x : v) s2 += (x - mean) * (x - mean);
  return {mean, std::sqrt(s2 / static_cast<double>(v.size()))};
}

Tensor mean_token_loss(const Tensor& logits, const Tensor& targets) {
  const int64_t n = logits.size(0) * logits.size(1);
  return nn::functional::cross_entropy(logits.reshape({n, logits.size(2)}), targets.reshape({n}),
                                       nn::functional::CrossEntropyOptions{.ignore_index = -1});
}

}  // namespace

TEST_CASE("GPT: nanoGPT's parameter names and shapes; lm_head is wte (one parameter, saved once)", "[gpt]") {
  for (const bool bias : {true, false}) {
    CAPTURE(bias);
    gpt::GPTConfig c;  // the defaults: V 256, block 128, 4 layers, 4 heads, C 128
    c.bias = bias;
    gpt::GPT model(c);
    const auto want = nanogpt_parameters(c);
    const NamedTensors got = model.named_parameters();
    REQUIRE(got.size() == want.size());
    int64_t elements = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      CHECK(got[i].first == want[i].first);
      CHECK(got[i].second.shape() == want[i].second);
      CHECK(got[i].second.dtype() == DType::f32);
      elements += shape_numel(want[i].second);
    }
    // V C + block C + L (12 C^2 + 13 C) + 2 C with biases (C = 128): 842,496; without: L 12 C^2 + C more.
    const int64_t C = 128;
    CHECK(elements == (bias ? 256 * C + 128 * C + 4 * (12 * C * C + 13 * C) + 2 * C
                            : 256 * C + 128 * C + 4 * (12 * C * C + 2 * C) + C));
    CHECK(model.num_parameters() == elements);
    std::set<const TensorImpl*> unique;
    for (const Tensor& p : model.parameters()) unique.insert(p.unsafe_impl());
    CHECK(unique.size() == got.size());  // no tensor twice: the optimizer steps wte once
    CHECK(model.state_dict().size() == got.size());  // no lm_head.weight, no buffers
  }
  // The committed twin weights (PyTorch's named_parameters of nanoGPT, scripts/make_gpt_fixture.py) have
  // exactly these names: make_model loads them strictly.
  const auto tiny = make_model(DType::f32);
  CHECK(tiny->state_dict().size() == load("weights").tensors.size());
}

TEST_CASE("GPT: initialized as nanoGPT (N(0, 0.02), c_proj N(0, 0.02 / sqrt(2 n_layer)), zero biases, unit LN)",
          "[gpt]") {
  manual_seed(5);
  gpt::GPT model(gpt::GPTConfig{});
  const double proj = 0.02 / std::sqrt(8.0);
  for (const auto& [name, p] : model.named_parameters()) {
    CAPTURE(name);
    const auto [mean, sd] = moments(p);
    const bool ln = name.find(".ln_") != std::string::npos;
    const bool is_bias = name.size() > 5 && name.substr(name.size() - 5) == ".bias";
    if (ln || is_bias) {
      CHECK(mean == (ln && !is_bias ? 1.0 : 0.0));
      CHECK(sd == 0.0);
      continue;
    }
    // >= 16,384 draws per tensor: the sample std is within ~1% of sigma (its standard error is
    // sigma / sqrt(2 n) = 0.55%); 4% bounds it and tells 0.02 from 0.00707 at once.
    const double sigma = name.find("c_proj.weight") != std::string::npos ? proj : 0.02;
    CHECK(std::abs(sd - sigma) < 0.04 * sigma);
    CHECK(std::abs(mean) < 0.04 * sigma);
  }
  // Ember's default generator decides the init: the same seed, the same model.
  manual_seed(5);
  gpt::GPT again(gpt::GPTConfig{});
  CHECK(again.named_parameters()[5].second.to_vector<float>() == model.named_parameters()[5].second.to_vector<float>());
}

TEST_CASE("GPT matches the PyTorch twin: logits, mean loss over non-ignored tokens and every gradient",
          "[gpt][cuda]") {
  const SafetensorsContent fx = load("tiny");
  for (const Device device : test::devices()) {
    for (const DType dtype : {DType::f64, DType::f32}) {
      if (device.is_cuda() && dtype == DType::f64) continue;  // CUDA computes in f32
      CAPTURE(device.str(), dtype_name(dtype));
      const Tensor idx = tensor(fx, "idx").to(device), targets = tensor(fx, "targets").to(device);
      // The references are float64 results rounded to float32 for storage (scripts/make_gpt_fixture.py):
      // each element within 2^-24 = 6.0e-8 of its own magnitude. f64: Ember's float64 result differs
      // from PyTorch's float64 by summation order only (~1e-15), so the bound is the storage rounding,
      // 1e-7 of the tensor's max (measured: at most 4.7e-8, the rounding itself). f32 (CPU and CUDA):
      // float32 rounding (6e-8) through 2 blocks, the LayerNorm and softmax backwards and sums over 16
      // tokens: measured at most 4.4e-7 (logits) and 1.3e-6 (gradients) relative to a tensor's max on
      // the CPU, 1.7e-7 and 5.0e-7 on the emulated CUDA backend; 1e-5 leaves a factor of ~7 and still
      // fails any wrong term (one token's contribution is ~1e-1 of these tensors).
      const Tolerance tol = dtype == DType::f64 ? Tolerance{1e-7, 0.0} : Tolerance{1e-5, 0.0};
      auto model = make_model(dtype, 0.0, device);
      const Tensor logits = model->forward(idx);
      CHECK(logits.dtype() == dtype);
      CHECK(logits.device() == device);
      const double logits_err = expect_close_per_tensor("logits", logits, tensor(fx, "logits"), tol);
      const Tensor loss = mean_token_loss(logits, targets);
      // The loss is stored in float64: f64 to summation order, f32 to float32 rounding of 12 terms.
      expect_close_per_tensor("loss", loss.reshape({1}), tensor(fx, "loss").reshape({1}),
                              dtype == DType::f64 ? Tolerance{1e-12, 0.0} : Tolerance{1e-6, 0.0});
      loss.backward();
      double worst = 0.0;
      for (const auto& [name, p] : model->named_parameters())
        worst = std::max(worst, expect_close_per_tensor("grad." + name, p.grad(), tensor(fx, "grad." + name), tol));
      INFO("largest relative error: logits " << logits_err << ", gradients " << worst);
      CHECK(std::max(logits_err, worst) <= tol.rel);  // (build/tests/ember_tests "[gpt]" -s prints them)
    }
  }
  // Ember's tied gradient matched PyTorch's, which holds both contributions: the part through lm_head
  // alone (an untied copy) is far from the total, and so is the rest (the lookup's part), each by more
  // than 1000x the f32 tolerance.
  const Tensor total = tensor(fx, "grad.transformer.wte.weight"), lm_head = tensor(fx, "grad_lm_head_part");
  CHECK(rel_diff(lm_head, total) > 1e-2);
  CHECK(rel_diff(total - lm_head, total) > 1e-2);
}

TEST_CASE("GPT: Ember's safetensors of the model is the file the PyTorch twin loads", "[gpt]") {
  // scripts/make_gpt_fixture.py loads tests/fixtures/gpt/weights.safetensors into the twin with
  // gpt_twin.load_ember (tying lm_head) and checks its logits; Ember's own file has the same names and values.
  const auto model = make_model(DType::f32);
  const std::string path = (std::filesystem::temp_directory_path() / "ember_test_gpt.safetensors").string();
  save_safetensors(path, model->state_dict());
  const SafetensorsContent mine = load_safetensors(path), committed = load("weights");
  std::filesystem::remove(path);
  REQUIRE(mine.tensors.size() == committed.tensors.size());
  for (size_t i = 0; i < mine.tensors.size(); ++i) {
    CHECK(mine.tensors[i].first == committed.tensors[i].first);
    CHECK(mine.tensors[i].second.to_vector<float>() == committed.tensors[i].second.to_vector<float>());
  }
  CHECK(mine.find("lm_head.weight").defined() == false);
}

TEST_CASE("GPT: nanoGPT's own state_dict (lm_head.weight, mask buffers) loads through from_nanogpt_state_dict",
          "[gpt]") {
  const SafetensorsContent weights = load("weights");
  NamedTensors nanogpt = weights.tensors;
  const Tensor wte = weights.find("transformer.wte.weight");
  nanogpt.emplace_back("transformer.h.0.attn.bias", ones({1, 1, 8, 8}));
  nanogpt.emplace_back("lm_head.weight", wte.clone());
  auto model = std::make_shared<gpt::GPT>(config(weights, DType::f32));
  CHECK_THROWS_WITH(model->load_state_dict(nanogpt),
                    Contains("unexpected keys: transformer.h.0.attn.bias, lm_head.weight"));
  model->load_state_dict(gpt::from_nanogpt_state_dict(nanogpt));
  CHECK(model->transformer->wte->weight.to_vector<float>() == wte.to_vector<float>());
  nanogpt.back().second = wte * 2.0;  // untied values cannot be one tensor
  CHECK_THROWS_WITH(gpt::from_nanogpt_state_dict(nanogpt),
                    Contains("lm_head.weight f32[256, 16] on cpu differs from transformer.wte.weight"));
}

TEST_CASE("GPT rejects a bad configuration and bad token ids with errors that name them", "[gpt]") {
  gpt::GPTConfig bad;
  bad.n_embd = 130;  // not a multiple of 4 heads
  CHECK_THROWS_WITH(gpt::GPT(bad), Contains("GPT: n_embd (130) must be a multiple of n_head (4)"));
  bad = gpt::GPTConfig{};
  bad.vocab_size = 0;
  CHECK_THROWS_WITH(gpt::GPT(bad), Contains("must be positive, got vocab_size=0"));
  bad = gpt::GPTConfig{};
  bad.dropout = 1.0;
  CHECK_THROWS_WITH(gpt::GPT(bad), Contains("GPT: dropout must be in [0, 1), got 1"));

  auto model = make_model(DType::f32);  // V 256, block 8
  const TensorOptions i64 = TensorOptions{}.set_dtype(DType::i64);
  CHECK_THROWS_WITH(model->forward(zeros({2, 4})), Contains("GPT: idx must be i64 token ids [B, T], got f32[2, 4]"));
  CHECK_THROWS_WITH(model->forward(zeros({4}, i64)), Contains("GPT: idx must be i64 token ids [B, T], got i64[4]"));
  CHECK_THROWS_WITH(model->forward(zeros({1, 9}, i64)), Contains("GPT: sequence length T=9 exceeds block_size 8"));
  CHECK_THROWS_WITH(model->forward(from_vector(std::vector<int64_t>{1, 2, 256, 3}, {2, 2}, i64)),
                    Contains("GPT: token id 256 at idx[1, 0] is outside the vocabulary [0, 256)"));
  CHECK_THROWS_WITH(model->forward(from_vector(std::vector<int64_t>{-1}, {1, 1}, i64)),
                    Contains("GPT: token id -1 at idx[0, 0] is outside the vocabulary"));

  Generator gen(1);
  CHECK_THROWS_WITH(gpt::generate(*model, "", 3, 1.0, 0, gen), Contains("generate: the prompt must not be empty"));
  CHECK_THROWS_WITH(gpt::generate(*model, "a", -1, 1.0, 0, gen),
                    Contains("generate: n (bytes to sample) must be >= 0, got -1"));
  CHECK_THROWS_WITH(gpt::generate(*model, "a", 1, NAN, 0, gen), Contains("generate: temperature must be finite"));
  gpt::GPTConfig wide;
  wide.vocab_size = 300;
  wide.n_layer = 1;
  wide.n_embd = 8;
  wide.n_head = 2;
  gpt::GPT big_vocab(wide);
  CHECK_THROWS_WITH(gpt::generate(big_vocab, "a", 1, 1.0, 0, gen),
                    Contains("generate: a byte-level model needs vocab_size <= 256, got 300"));
  CHECK_THROWS_WITH(gpt::sample_token({0.0, 1.0}, 1.0, 0, 1.0), Contains("sample_token: u must be in [0, 1), got 1"));
}

TEST_CASE("GPT: dropout where nanoGPT has it, identity in eval mode", "[gpt]") {
  const SafetensorsContent fx = load("tiny");
  const Tensor idx = tensor(fx, "idx");
  auto model = make_model(DType::f64, 0.2);
  model->eval();
  // Eval mode: the dropout-free logits (f64 against the f32-rounded reference: see the fixture test).
  expect_close_per_tensor("eval logits", model->forward(idx), tensor(fx, "logits"), Tolerance{1e-7, 0.0});
  model->train();
  manual_seed(3);
  const auto a = model->forward(idx).to_vector<double>();
  const auto b = model->forward(idx).to_vector<double>();  // the next masks
  manual_seed(3);
  const auto a_again = model->forward(idx).to_vector<double>();
  CHECK(a != b);
  CHECK(a == a_again);  // masks from the default generator
  CHECK(rel_diff(from_vector(a, {static_cast<int64_t>(a.size())}, TensorOptions{}.set_dtype(DType::f64)),
                 tensor(fx, "logits").to(DType::f64).reshape({static_cast<int64_t>(a.size())})) > 1e-2);
}

TEST_CASE("sample_token: argmax at temperature <= 0, inverse CDF of softmax(logits / temperature), top_k",
          "[gpt]") {
  const std::vector<double> two{0.0, std::log(3.0)};  // p = 1/4, 3/4 at temperature 1
  CHECK(gpt::sample_token(two, 1.0, 0, 0.0) == 0);
  CHECK(gpt::sample_token(two, 1.0, 0, 0.249) == 0);
  CHECK(gpt::sample_token(two, 1.0, 0, 0.251) == 1);
  // temperature 2: p0 = 1 / (1 + sqrt(3)) = 0.3660
  CHECK(gpt::sample_token(two, 2.0, 0, 0.365) == 0);
  CHECK(gpt::sample_token(two, 2.0, 0, 0.367) == 1);
  CHECK(gpt::sample_token(two, 0.0, 0, 0.0) == 1);
  CHECK(gpt::sample_token(two, -1.0, 0, 0.9) == 1);
  const std::vector<double> three{3.0, 1.0, 2.0};
  for (double u : {0.0, 0.3, 0.6, 0.999}) {
    CHECK(gpt::sample_token(three, 1.0, 1, u) == 0);  // top_k 1: the argmax only
    CHECK(gpt::sample_token(three, 1.0, 2, u) != 1);  // top_k 2 drops the smallest
  }
  // top_k 2 over {3, 2}: p0 = e / (e + 1) = 0.7311
  CHECK(gpt::sample_token(three, 1.0, 2, 0.73) == 0);
  CHECK(gpt::sample_token(three, 1.0, 2, 0.732) == 2);
}

TEST_CASE("generate: prompt then n bytes, reproducible from the generator, greedy = argmax of the cropped context",
          "[gpt]") {
  auto model = make_model(DType::f32);  // block 8: 20 new bytes need the context cropped
  const std::string prompt = "hi!";
  Generator g1(42), g2(42), g3(43);
  const std::string a = gpt::generate(*model, prompt, 20, 1.0, 0, g1);
  CHECK(model->is_training());  // restored
  const std::string b = gpt::generate(*model, prompt, 20, 1.0, 0, g2);
  const std::string c = gpt::generate(*model, prompt, 20, 1.0, 0, g3);
  CHECK(a.size() == prompt.size() + 20);
  CHECK(a.substr(0, prompt.size()) == prompt);
  CHECK(a == b);
  CHECK(a != c);  // another seed, other bytes (256-way draws: equal with probability ~0)
  CHECK(g1.offset == g2.offset);
  CHECK(g1.offset > 0);
  const std::string top1 = gpt::generate(*model, prompt, 20, 1.0, 1, g1);  // top_k 1 is greedy
  CHECK(gpt::generate(*model, prompt, 0, 1.0, 0, g1) == prompt);

  // Greedy decoding against a naive loop over the last <= 8 tokens.
  Generator unused(7);
  const std::string greedy = gpt::generate(*model, prompt, 20, 0.0, 0, unused);
  CHECK(unused.offset == 0);  // no draws
  CHECK(greedy == top1);
  std::vector<int64_t> tokens(prompt.begin(), prompt.end());
  NoGradGuard ng;
  model->eval();
  for (int i = 0; i < 20; ++i) {
    const int64_t t = std::min<int64_t>(static_cast<int64_t>(tokens.size()), 8);
    const std::vector<int64_t> ctx(tokens.end() - t, tokens.end());
    const Tensor idx = from_vector(ctx, {1, t}, TensorOptions{}.set_dtype(DType::i64));
    const auto logits = model->forward(idx).to_vector<float>();
    int64_t best = 0;
    for (int64_t v = 1; v < 256; ++v)
      if (logits[static_cast<size_t>((t - 1) * 256 + v)] > logits[static_cast<size_t>((t - 1) * 256 + best)]) best = v;
    tokens.push_back(best);
  }
  CHECK(greedy == std::string(tokens.begin(), tokens.end()));
}
