/// @file tests/train/test_checkpoint.cpp @brief Checkpoint composition: optim. namespace, run position in __metadata__, config comparison.
#include <catch2/catch.hpp>

#include "core/error.h"
#include "examples/ember_train/checkpoint.h"
#include "tests/train/temp_dir.h"

using namespace ember;
using namespace ember::train;
using Catch::Matchers::Contains;

TEST_CASE("checkpoint round trip splits model, optim. tensors and the run position", "[train][checkpoint]") {
  test::TempDir dir;
  RunPosition p{.epoch = 2, .micro_step = 17, .optimizer_steps = 123, .micro_steps = 490, .skipped_steps = 1,
                .rng_seed = 0xFFFFFFFFFFFFFFF0ull, .rng_offset = 4096};
  save_checkpoint(dir.file("c.st"), {{"fc1.weight", ones({2, 2})}},
                  {{"fc1.weight.exp_avg", full({2, 2}, 0.5)}}, p, {{"config.model", "mlp"}});
  // The optimizer state lives under "optim." and the position under __metadata__ in the file itself.
  SafetensorsContent raw = load_safetensors(dir.file("c.st"));
  CHECK(raw.find("optim.fc1.weight.exp_avg").defined());
  CHECK(raw.metadata.at("optimizer_steps") == "123");
  CHECK(raw.metadata.at("format") == "ember-train-checkpoint/1");

  Checkpoint c = load_checkpoint(dir.file("c.st"));
  REQUIRE(c.has_position);
  CHECK(c.model.size() == 1);
  CHECK(c.model[0].first == "fc1.weight");
  REQUIRE(c.optim.size() == 1);
  CHECK(c.optim[0].first == "fc1.weight.exp_avg");
  CHECK(c.optim[0].second.to_vector<float>() == std::vector<float>(4, 0.5f));
  CHECK(c.position.epoch == 2);
  CHECK(c.position.micro_step == 17);
  CHECK(c.position.optimizer_steps == 123);
  CHECK(c.position.micro_steps == 490);
  CHECK(c.position.skipped_steps == 1);
  CHECK(c.position.rng_seed == 0xFFFFFFFFFFFFFFF0ull);
  CHECK(c.position.rng_offset == 4096);
  CHECK(c.config == SafetensorsMetadata{{"config.model", "mlp"}});
}

TEST_CASE("checkpoint loader accepts plain weights and rejects a broken position", "[train][checkpoint]") {
  test::TempDir dir;
  save_safetensors(dir.file("w.st"), {{"fc.weight", zeros({1})}});
  Checkpoint w = load_checkpoint(dir.file("w.st"));
  CHECK_FALSE(w.has_position);
  CHECK(w.model.size() == 1);

  SafetensorsMetadata m{{"format", "ember-train-checkpoint/1"}, {"epoch", "x1"}};
  save_safetensors(dir.file("b.st"), {{"fc.weight", zeros({1})}}, m);
  CHECK_THROWS_WITH(load_checkpoint(dir.file("b.st")), Contains("\"epoch\" is not an integer: 'x1'"));
  m["epoch"] = "1";
  save_safetensors(dir.file("b.st"), {{"fc.weight", zeros({1})}}, m);
  CHECK_THROWS_WITH(load_checkpoint(dir.file("b.st")), Contains("lacks \"micro_step\""));
  save_safetensors(dir.file("f.st"), {{"fc.weight", zeros({1})}}, {{"format", "other/9"}});
  CHECK_THROWS_WITH(load_checkpoint(dir.file("f.st")), Contains("format 'other/9'"));
}

TEST_CASE("check_same_config lists every differing setting", "[train][checkpoint]") {
  const SafetensorsMetadata saved{{"config.accum", "4"}, {"config.lr", "0.001"}, {"config.model", "cnn"}};
  CHECK_NOTHROW(check_same_config("c", saved, saved));
  const SafetensorsMetadata now{{"config.accum", "2"}, {"config.lr", "0.001"}, {"config.model", "mlp"}};
  CHECK_THROWS_WITH(check_same_config("c", saved, now),
                    Contains("accum: checkpoint 4, now 2") && Contains("model: checkpoint cnn, now mlp") &&
                        !Contains("lr:"));
}
