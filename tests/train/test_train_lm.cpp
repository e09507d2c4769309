/// @file tests/train/test_train_lm.cpp @brief ember-train-lm: its command line, a run end to end on a small generated corpus (summary, metrics, sample), token-exact accumulation inside the program, mpirun and the emulated GPU against one CPU process.
#include <catch2/catch.hpp>
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "data/fortunes.h"
#include "data/text.h"
#include "examples/ember_train/cli.h"
#include "examples/ember_train/train.h"
#include "tests/train/run_compare.h"
#include "tests/train/temp_dir.h"

using namespace ember;
using namespace ember::train;
using Catch::Matchers::Contains;

namespace {

/// A directory of fortune files of made-up English-like text: `files` files of 12 fortunes each, of
/// 1 to 6 lines of 2 to 9 words, from a fixed word list and a fixed LCG, so every run sees the same
/// bytes and the fortunes differ in length (ragged sequences with --pad).
void write_corpus(const test::TempDir& dir, int files) {
  static const char* const kWords[] = {"the",  "cat", "sat",   "on",    "a",     "mat",  "and",   "dog",
                                       "ran",  "far", "away",  "from",  "home",  "into", "night", "when",
                                       "rain", "fell", "quiet", "river", "under", "old",  "stars", "we"};
  uint64_t state = 12345;
  auto next = [&](uint64_t n) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (state >> 33) % n;
  };
  for (int f = 0; f < files; ++f) {
    std::string text;
    for (int doc = 0; doc < 12; ++doc) {
      const uint64_t lines = 1 + next(6);
      for (uint64_t l = 0; l < lines; ++l) {
        const uint64_t words = 2 + next(8);
        for (uint64_t w = 0; w < words; ++w) {
          if (w > 0) text += ' ';
          text += kWords[next(24)];
        }
        text += l + 1 == lines ? ".\n" : ",\n";
      }
      text += "%\n";
    }
    test::write_bytes(dir.file(std::to_string(f) + "-fortunes"), text);
  }
}

/// A small GPT run on the corpus of `data`: 1 block, width 16, 2 heads, context 16, on the CPU.
TrainOptions small_lm(const std::string& data) {
  TrainOptions o = lm_defaults();
  o.data_dir = data;
  o.lm.block_size = 16;
  o.lm.layers = 1;
  o.lm.heads = 2;
  o.lm.dim = 16;
  o.micro_batch = 4;
  o.accum = 2;
  o.epochs = 1;
  o.warmup = 2;
  o.device = DeviceChoice::CPU;
  o.threads = 1;
  o.progress = false;
  return o;
}

}  // namespace

TEST_CASE("ember-train-lm command line: defaults, its own flags, errors", "[train][lm]") {
  const TrainOptions o = parse_lm_cli(std::vector<std::string>{}).options;
  CHECK(o.model == ModelKind::GPT);
  CHECK(o.norm == NormKind::None);
  CHECK(o.data_dir == data::kDefaultFortunesDir);
  CHECK(o.optimizer == OptimizerKind::AdamW);
  CHECK(o.resolved_lr() == 1e-3);
  CHECK(std::string(program_name(o)) == "ember-train-lm");

  const TrainOptions p = parse_lm_cli(std::vector<std::string>{"--block-size", "32", "--layers", "2", "--heads", "8",
                                                               "--dim", "64", "--pad", "--sample", "100",
                                                               "--prompt", "Q: ", "--temperature", "0"})
                             .options;
  CHECK(p.lm.block_size == 32);
  CHECK(p.lm.layers == 2);
  CHECK(p.lm.heads == 8);
  CHECK(p.lm.dim == 64);
  CHECK(p.lm.pad);
  CHECK(p.lm.sample == 100);
  CHECK(p.lm.prompt == "Q: ");
  CHECK(p.lm.temperature == 0);

  const std::string help = parse_lm_cli(std::vector<std::string>{"--help"}).text;
  CHECK_THAT(help, Contains("--block-size"));
  CHECK_THAT(help, Contains("--sample"));
  CHECK_THAT(help, !Contains("--bn-stats"));

  CHECK_THROWS_WITH(parse_lm_cli(std::vector<std::string>{"--dim", "30", "--heads", "4"}),
                    Contains("--dim 30 is not a multiple of --heads 4"));
  CHECK_THROWS_WITH(parse_lm_cli(std::vector<std::string>{"--block-size", "0"}), Contains("--block-size: must be in"));
  CHECK_THROWS_WITH(parse_lm_cli(std::vector<std::string>{"--temperature", "-1"}), Contains("--temperature"));
  CHECK_THROWS_AS(parse_lm_cli(std::vector<std::string>{"--model", "cnn"}), Error);  // not ember-train-lm's
  CHECK_THROWS_AS(parse_cli(std::vector<std::string>{"--block-size", "8"}), Error);  // not ember-train's
}

TEST_CASE("ember-train-lm end to end: every real token trained once per epoch, summary, metrics, sample",
          "[train][lm][e2e]") {
  test::TempDir data, out;
  write_corpus(data, 3);  // 0-fortunes is the validation file (position 0 of 3), the other two train
  TrainOptions o = small_lm(data.path().string());
  o.lm.sample = 40;
  o.lm.prompt = "the ";
  o.summary = out.file("s.json");
  o.metrics = out.file("m.csv");
  std::ostringstream log;
  const RunSummary s = run_training(o, log);

  // The same corpus cut independently: the run must have trained on each real target token once.
  const data::TextCorpus corpus = data::load_fortunes(o.data_dir);
  const data::TokenDataset train(corpus.train_docs, 16, data::TextPacking::Pack);
  const data::TokenDataset val(corpus.val_docs, 16, data::TextPacking::Pack);
  const auto j = nlohmann::json::parse(test::read_bytes(o.summary));
  REQUIRE(s.lm.has_value());
  CHECK(j["model"] == "gpt");
  CHECK(j["tokens"] == train.real_tokens());
  CHECK(j["train_samples"] == train.size());
  CHECK(j["test_samples"] == val.size());
  CHECK(j["micro_steps"] == (train.size() + 3) / 4);
  CHECK(j["optimizer_steps"] == ((train.size() + 3) / 4 + 1) / 2);
  CHECK(j["tokens_per_s"].get<double>() > 0);
  CHECK_FALSE(j.contains("samples_per_s"));
  CHECK(j["layers"] == 1);
  CHECK(j["heads"] == 2);
  CHECK(j["dim"] == 16);
  CHECK(j["block_size"] == 16);
  CHECK(j["unigram_loss"].get<double>() == Approx(data::unigram_loss(train, val)).epsilon(1e-12));
  const double val_loss = j["val_loss"].get<double>();
  CHECK(std::isfinite(val_loss));
  CHECK(val_loss < std::log(256.0));  // a few AdamW steps move it from ~ln 256 towards the text's bytes
  CHECK(j["test_loss"].get<double>() == val_loss);
  // 1 block of width 16: wte 256x16 (tied with lm_head), wpe 16x16, two LayerNorms + ln_f, attention,
  // MLP: 4096 + 256 + 3 * 32 + (16 * 48 + 48) + (16 * 16 + 16) + (16 * 64 + 64) + (64 * 16 + 16).
  CHECK(j["parameters"] == 4096 + 256 + 96 + 816 + 272 + 1088 + 1040);

  // The sample is bytes (the summary's JSON string replaces what is not UTF-8).
  const std::string& sample = s.lm->sample;
  CHECK(sample.size() == 4 + 40);
  CHECK(j.contains("sample"));
  CHECK(sample.rfind("the ", 0) == 0);
  CHECK_THAT(log.str(), Contains("ember-train-lm: sample:\n" + sample));
  CHECK_THAT(log.str(), Contains("unigram baseline"));

  // One row per window; the token column sums to the summary's tokens.
  const auto rows = test::lines(test::read_bytes(o.metrics));
  REQUIRE(rows.size() == 1 + j["optimizer_steps"].get<size_t>());
  CHECK(rows[0] == "step,epoch,tokens,loss,lr,grad_norm,skipped,elapsed_s");
  int64_t tokens = 0;
  for (size_t i = 1; i < rows.size(); ++i) {
    const size_t a = rows[i].find(',', rows[i].find(',') + 1) + 1;
    tokens += std::stoll(rows[i].substr(a, rows[i].find(',', a) - a));
  }
  CHECK(tokens == train.real_tokens());
}

TEST_CASE("ember-train-lm --pad: micro-batches of 2 x accum 3 train as micro-batches of 6 (tokens counted per window)",
          "[train][lm][e2e][accumulation]") {
  // Padded documents: the micro-batches hold different numbers of real tokens, so weighting each
  // micro-batch's mean equally (loss / accum) would differ from the large batch; normalizing by the
  // window's real tokens makes the 3 micro-batches of a window one batch of 6 sequences.
  test::TempDir data, out;
  write_corpus(data, 3);
  auto run = [&](int64_t micro, int64_t accum, const std::string& tag) {
    TrainOptions o = small_lm(data.path().string());
    o.lm.pad = true;
    o.shuffle = false;
    o.optimizer = OptimizerKind::SGD;
    o.lr = 0.1;
    o.micro_batch = micro;
    o.accum = accum;
    o.steps = 4;
    o.save = out.file(tag + ".safetensors");
    std::ostringstream log;
    return run_training(o, log);
  };
  const RunSummary large = run(6, 1, "large");
  const RunSummary accumulated = run(2, 3, "accumulated");
  CHECK(large.optimizer_steps == 4);
  CHECK(accumulated.optimizer_steps == 4);
  REQUIRE(accumulated.lm->tokens == large.lm->tokens);
  // The same tokens per window, summed in another order (f32): every tensor to 1e-5 of its largest entry
  // after 4 SGD-momentum steps (as the image models' accumulation tests); wrong weighting moves the
  // weights by ~1e-3 of their scale.
  test::check_checkpoints_close(out.file("large.safetensors"), out.file("accumulated.safetensors"),
                                {1e-5, 1e-7, {}, 0});
}

TEST_CASE("ember-train-lm on Debian's fortunes: the real corpus loads and a few steps train", "[train][lm][e2e]") {
  if (!std::filesystem::is_directory(data::kDefaultFortunesDir)) {
    WARN("Debian's fortunes package is not installed; skipping");
    return;
  }
  TrainOptions o = small_lm(data::kDefaultFortunesDir);
  o.data_dir = data::kDefaultFortunesDir;
  o.steps = 2;
  o.limit_test = 32;
  std::ostringstream log;
  const RunSummary s = run_training(o, log);
  CHECK(s.optimizer_steps == 2);
  // The byte frequencies of English text: about 3.3 nats per byte (docs/transformer.md).
  CHECK(s.lm->unigram_loss > 3.0);
  CHECK(s.lm->unigram_loss < 3.6);
  CHECK(std::isfinite(s.lm->val_loss));
}

#if defined(EMBER_TRAIN_LM_BINARY) && defined(EMBER_MPIEXEC)
TEST_CASE("ember-train-lm under mpirun -np 3 equals one process with 3x the accumulation (tokens counted globally)",
          "[train][lm][e2e][mpi]") {
  // With --pad every rank's micro-batch holds another number of real tokens; the 3-rank run's global
  // micro-step k holds the single run's micro-batches 3k, 3k+1, 3k+2, so its windows of accum 1 are the
  // single run's windows of accum 3 only if the token counts are summed over the ranks before the scale.
  // Dropout 0.1: each micro-batch's masks come from its global index, the same in both runs.
  test::TempDir data, out;
  write_corpus(data, 3);
  const std::string common = " --data " + data.path().string() +
                             " --block-size 16 --layers 1 --heads 2 --dim 16 --warmup 2 --pad --dropout 0.1 --optimizer sgd"
                             " --lr 0.1 --micro-batch 2 --steps 5 --no-shuffle --device cpu --threads 1"
                             " --limit-test 16 --no-progress";
  auto run = [&](const std::string& cmd, const std::string& tag) {
    test::run_ok(cmd + " --save " + out.file(tag + ".safetensors") + " --summary " + out.file(tag + ".json"),
                 out.file(tag + ".log"));
  };
  run(std::string(EMBER_TRAIN_LM_BINARY) + common + " --accum 3", "single");
  run(test::mpirun(3) + EMBER_TRAIN_LM_BINARY + common + " --accum 1", "mpi");
  const auto single = nlohmann::json::parse(test::read_bytes(out.file("single.json")));
  const auto mpi = nlohmann::json::parse(test::read_bytes(out.file("mpi.json")));
  CHECK(mpi["world_size"] == 3);
  CHECK(mpi["optimizer_steps"] == 5);
  CHECK(single["optimizer_steps"] == 5);
  CHECK(mpi["tokens"] == single["tokens"]);
  CHECK(mpi["final_loss"].get<double>() == Approx(single["final_loss"].get<double>()).epsilon(1e-5));
  // Same tokens and masks per window, summed in another order: 1e-5 of each tensor's largest entry.
  test::check_checkpoints_close(out.file("single.safetensors"), out.file("mpi.safetensors"), {1e-5, 1e-7, {}, 0});
}
#endif

#if defined(EMBER_TRAIN_LM_BINARY) && defined(EMBER_TRAIN_LM_EMU_BINARY)
TEST_CASE("ember-train-lm-emu --device cuda trains the GPT as the CPU does", "[train][lm][e2e][emu]") {
  // The whole CUDA path of a transformer on the emulator: embedding (sorted deterministic backward),
  // layer norm, fused causal softmax, GELU, cuBLAS GEMMs (batched for attention), AdamW.
  test::TempDir data, out;
  write_corpus(data, 3);
  const std::string common = " --data " + data.path().string() +
                             " --block-size 16 --layers 1 --heads 2 --dim 16 --warmup 2 --micro-batch 4 --accum 2 --steps 3"
                             " --clip-norm 1 --no-shuffle --threads 1 --limit-test 16 --no-progress";
  auto outputs = [&](const std::string& tag) {
    return " --save " + out.file(tag + ".safetensors") + " --summary " + out.file(tag + ".json");
  };
  test::run_ok(std::string(EMBER_TRAIN_LM_BINARY) + " --device cpu" + common + outputs("cpu"), out.file("cpu.log"));
  test::run_ok(std::string(EMBER_TRAIN_LM_EMU_BINARY) + " --device cuda" + common + outputs("cuda"),
               out.file("cuda.log"));
  const auto cpu = nlohmann::json::parse(test::read_bytes(out.file("cpu.json")));
  const auto cuda = nlohmann::json::parse(test::read_bytes(out.file("cuda.json")));
  CHECK(cuda["device"] == "cuda:0");
  CHECK(cuda["optimizer_steps"] == 3);
  CHECK(cuda["tokens"] == cpu["tokens"]);
  // f32 on both backends; the GEMMs differ in summation order (OpenBLAS vs the cuBLAS fake), ~1e-7
  // relative per output, grown through 3 AdamW steps whose update is ~lr per weight whatever the
  // gradient's size: 1e-4 of a tensor's largest entry plus 1e-6 absolute (measured below 1e-5).
  CHECK(cuda["final_loss"].get<double>() == Approx(cpu["final_loss"].get<double>()).epsilon(1e-5));
  test::check_checkpoints_close(out.file("cpu.safetensors"), out.file("cuda.safetensors"), {1e-4, 1e-6, {}, 0});
  const auto windows = cuda["optimizer_steps"].get<int64_t>() + cuda["skipped_steps"].get<int64_t>();
  CHECK(cuda["host_syncs"].get<int64_t>() <= windows + 1);
}
#endif
