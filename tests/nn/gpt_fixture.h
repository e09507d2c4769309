/// @file tests/nn/gpt_fixture.h @brief The PyTorch fixtures of the GPT tests (tests/fixtures/gpt/, scripts/make_gpt_fixture.py): loading a file, building Ember's GPT from the committed weights, per-tensor relative differences.
#pragma once
#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include "core/safetensors.h"
#include "examples/gpt/gpt.h"
#include "tests/optim/reference_fixture.h"

namespace ember::test::gpt_fixture {

/// tests/fixtures/gpt/<name>.safetensors.
inline SafetensorsContent load(const std::string& name) {
  return load_safetensors(std::string(EMBER_FIXTURE_DIR) + "/gpt/" + name + ".safetensors");
}

/// The tensor called `key` of `file` (named in the failure).
inline Tensor tensor(const SafetensorsContent& file, const std::string& key) {
  Tensor t = file.find(key);
  INFO("GPT fixture: tensor " << key);
  REQUIRE(t.defined());
  return t;
}

/// The fixture model's configuration (the metadata of weights.safetensors), in `dtype`.
inline gpt::GPTConfig config(const SafetensorsContent& weights, DType dtype) {
  auto meta = [&](const std::string& key) {
    INFO("GPT fixture: metadata " << key);
    REQUIRE(weights.metadata.count(key) == 1);
    return weights.metadata.at(key);
  };
  gpt::GPTConfig c;
  c.vocab_size = std::stoll(meta("vocab_size"));
  c.block_size = std::stoll(meta("block_size"));
  c.n_layer = std::stoll(meta("n_layer"));
  c.n_head = std::stoll(meta("n_head"));
  c.n_embd = std::stoll(meta("n_embd"));
  c.bias = meta("bias") == "true";
  c.dtype = dtype;
  return c;
}

/// Ember's GPT on `device` holding the committed weights (float32-exact values: exact in f32 and f64),
/// loaded strictly by name, so every nanoGPT name must be one of Ember's and the other way round.
inline std::shared_ptr<gpt::GPT> make_model(DType dtype, double dropout = 0.0, Device device = Device::cpu()) {
  const SafetensorsContent weights = load("weights");
  gpt::GPTConfig c = config(weights, dtype);
  c.dropout = dropout;
  c.device = device;
  auto model = std::make_shared<gpt::GPT>(c);
  model->load_state_dict(weights.tensors);
  return model;
}

/// max |a - b| / max |b|: how far `a` is from the reference `b`, on b's scale.
inline double rel_diff(const Tensor& a, const Tensor& b) {
  const auto va = reference::values(a), vb = reference::values(b);
  REQUIRE(va.size() == vb.size());
  double err = 0.0, scale = 0.0;
  for (size_t i = 0; i < va.size(); ++i) {
    err = std::max(err, std::abs(va[i] - vb[i]));
    scale = std::max(scale, std::abs(vb[i]));
  }
  return err / scale;
}

}  // namespace ember::test::gpt_fixture
