/// @file examples/ember_train/cli.cpp @brief ember-train command line: CLI11 flag definitions, enum choices and validation.
#include "examples/ember_train/cli.h"

#include <CLI/CLI.hpp>
#include <charconv>
#include <cmath>
#include <map>
#include <stdexcept>
#include <string>

#include "core/error.h"

namespace ember::train {

namespace {

/// A string-valued flag restricted to `choices`; the value is stored in `out` after parsing.
template <class E>
struct Choice {
  std::string text;
  std::map<std::string, E> values;
  E* out;
  std::string flag;

  void apply() const {
    if (text.empty()) return;
    auto it = values.find(text);
    if (it == values.end()) {
      std::string list;
      for (const auto& [k, _] : values) list += (list.empty() ? "" : ", ") + k;
      EMBER_FAIL(flag, ": '", text, "' is not one of ", list);
    }
    *out = it->second;
  }
};

/// "FLAG: value 'V' ..." for argument `i` of argv: `--flag=value`, or a value after its option.
std::string describe_argument(int i, const char* const* argv, const std::exception& e) {
  std::string arg = argv[i], flag, value = arg;
  const size_t eq = arg.find('=');
  if (arg.rfind("-", 0) == 0 && eq != std::string::npos) {
    flag = arg.substr(0, eq);
    value = arg.substr(eq + 1);
  } else if (arg.rfind("-", 0) == 0) {
    flag = arg;
    value.clear();
  } else if (i > 1 && std::string(argv[i - 1]).rfind("-", 0) == 0) {
    flag = argv[i - 1];
  }
  constexpr size_t kShown = 64;  // a fuzzer's megabyte-long value is not repeated whole
  if (value.size() > kShown) value = value.substr(0, kShown) + "... (" + std::to_string(value.size()) + " characters)";
  const std::string why = dynamic_cast<const std::out_of_range*>(&e)        ? "is out of range"
                          : dynamic_cast<const std::invalid_argument*>(&e) ? "is not valid"
                                                                           : "cannot be parsed";
  return (flag.empty() ? "argument " + std::to_string(i) : flag) + ": value '" + value + "' " + why + " (" + e.what() +
         ")";
}

/// For an exception other than CLI11's own ParseError out of `app.parse` (CLI11 2.1 lets std::stoll's
/// std::out_of_range escape for a huge number given to a negated flag, `--no-progress=99999999999999999999`):
/// which argument caused it. CLI11 does not say, so the arguments are parsed again, one more each time
/// (App::parse clears the previous results); the shortest prefix that throws again ends with it.
std::string describe_bad_argument(CLI::App& app, int argc, const char* const* argv, const std::exception& e) {
  for (int n = 2; n <= argc; ++n) {
    try {
      app.parse(n, argv);
    } catch (const CLI::ParseError&) {  // e.g. an option whose value is cut off by the prefix
    } catch (const std::exception& again) {
      return describe_argument(n - 1, argv, again);
    }
  }
  return std::string("cannot parse the command line (") + e.what() + ")";
}

/// CLI11 2.1 reads integers with strtoll/strtoull in base 0 and no range check: "99999999999999999999"
/// became INT64_MAX, "-1" for an unsigned option 2^64 - 1, "010" eight. Every integer option ("INT" or
/// "UINT") is checked first: plain decimal digits (a sign for INT) that fit 64 bits, handed on to CLI11
/// without leading zeros or "+".
void require_decimal_integers(CLI::App& app) {
  for (CLI::Option* opt : app.get_options()) {
    const std::string type = opt->get_type_name();
    if (type != "INT" && type != "UINT") continue;
    opt->transform(CLI::Validator(
        [is_signed = type == "INT"](std::string& text) -> std::string {
          const char* begin = text.data() + (text.starts_with('+') ? 1 : 0);
          const char* end = text.data() + text.size();
          std::from_chars_result r{};
          std::string canonical;
          if (is_signed) {
            int64_t v = 0;
            r = std::from_chars(begin, end, v);
            canonical = std::to_string(v);
          } else {
            uint64_t v = 0;
            r = std::from_chars(begin, end, v);
            canonical = std::to_string(v);
          }
          if (r.ec == std::errc() && r.ptr == end && begin != end) {
            text = canonical;  // what CLI11 then converts: "010" is ten, not octal eight
            return "";
          }
          const std::string shown = text.size() > 64 ? text.substr(0, 64) + "..." : text;
          return "value '" + shown + "' " +
                 (r.ec == std::errc::result_out_of_range ? "is out of range" : "is not a plain decimal integer") +
                 " (expected a decimal integer in " + (is_signed ? "[-2^63, 2^63)" : "[0, 2^64)") + ")";
        },
        ""));  // no description: --help shows the type as before
  }
}

void check_finite(const char* flag, double v) {
  EMBER_CHECK(std::isfinite(v), flag, ": value must be a finite number, got ", v);
}

void validate_lm(const TrainOptions& o) {
  const LmOptions& lm = o.lm;
  EMBER_CHECK(o.norm == NormKind::None && o.bn_stats == BnStats::Micro, "the GPT has no batch norm (--norm none)");
  EMBER_CHECK(lm.block_size >= 1 && lm.block_size <= 4096, "--block-size: must be in [1, 4096], got ", lm.block_size);
  EMBER_CHECK(lm.layers >= 1 && lm.layers <= 96, "--layers: must be in [1, 96], got ", lm.layers);
  EMBER_CHECK(lm.heads >= 1 && lm.heads <= 256, "--heads: must be in [1, 256], got ", lm.heads);
  EMBER_CHECK(lm.dim >= 1 && lm.dim <= 8192, "--dim: must be in [1, 8192], got ", lm.dim);
  EMBER_CHECK(lm.dim % lm.heads == 0, "--dim ", lm.dim, " is not a multiple of --heads ", lm.heads);
  EMBER_CHECK(lm.sample >= 0 && lm.sample <= (int64_t{1} << 20), "--sample: must be in [0, 2^20], got ", lm.sample);
  check_finite("--temperature", lm.temperature);
  EMBER_CHECK(lm.temperature >= 0, "--temperature: must be >= 0, got ", lm.temperature);
}

}  // namespace

const char* name(ModelKind m) { return m == ModelKind::MLP ? "mlp" : m == ModelKind::CNN ? "cnn" : "gpt"; }
const char* name(NormKind n) { return n == NormKind::Batch ? "batch" : n == NormKind::None ? "none" : "sync"; }
const char* name(BnStats b) { return b == BnStats::Micro ? "micro" : "window"; }
const char* name(OptimizerKind o) { return o == OptimizerKind::SGD ? "sgd" : "adamw"; }
const char* name(ScheduleKind s) { return s == ScheduleKind::Constant ? "constant" : "cosine"; }

void validate(const TrainOptions& o) {
  EMBER_CHECK(o.micro_batch >= 1, "--micro-batch: must be >= 1, got ", o.micro_batch);
  EMBER_CHECK(o.accum >= 1, "--accum: must be >= 1, got ", o.accum);
  EMBER_CHECK(o.micro_batch <= (int64_t{1} << 20) && o.accum <= (int64_t{1} << 20),
              "--micro-batch x --accum: ", o.micro_batch, " x ", o.accum, " is unreasonably large (limit 2^20 each)");
  EMBER_CHECK(o.epochs >= 1 && o.epochs <= (int64_t{1} << 20), "--epochs: must be in [1, 2^20], got ", o.epochs);
  EMBER_CHECK(o.steps >= 0, "--steps: must be >= 0 (0 = no limit), got ", o.steps);
  const double lr = o.resolved_lr();
  check_finite("--lr", lr);
  EMBER_CHECK(lr > 0, "--lr: must be > 0, got ", lr);
  if (o.momentum) {
    EMBER_CHECK(o.optimizer == OptimizerKind::SGD, "--momentum: applies to --optimizer sgd only (adamw uses betas)");
    check_finite("--momentum", *o.momentum);
    EMBER_CHECK(*o.momentum >= 0 && *o.momentum < 1, "--momentum: must be in [0, 1), got ", *o.momentum);
  }
  const double wd = o.resolved_weight_decay();
  check_finite("--weight-decay", wd);
  EMBER_CHECK(wd >= 0, "--weight-decay: must be >= 0, got ", wd);
  check_finite("--dropout", o.dropout);
  EMBER_CHECK(o.dropout >= 0 && o.dropout < 1, "--dropout: must be in [0, 1), got ", o.dropout);
  check_finite("--clip-norm", o.clip_norm);
  EMBER_CHECK(o.clip_norm >= 0, "--clip-norm: must be >= 0 (0 = off), got ", o.clip_norm);
  check_finite("--bucket-mb", o.bucket_mb);
  EMBER_CHECK(o.bucket_mb > 0 && o.bucket_mb <= 1024, "--bucket-mb: must be in (0, 1024] MiB, got ", o.bucket_mb);
  EMBER_CHECK(o.warmup >= 0, "--warmup: must be >= 0, got ", o.warmup);
  EMBER_CHECK(o.threads >= 0 && o.threads <= 1024, "--threads: must be in [0, 1024] (0 = default), got ", o.threads);
  EMBER_CHECK(o.checkpoint_every >= 0, "--checkpoint-every: must be >= 0, got ", o.checkpoint_every);
  EMBER_CHECK(o.checkpoint_every == 0 || !o.save.empty(), "--checkpoint-every: needs --save FILE to write to");
  EMBER_CHECK(o.log_every >= 1, "--log-every: must be >= 1, got ", o.log_every);
  EMBER_CHECK(o.init.empty() || o.resume.empty(),
              "--init: cannot be combined with --resume (the checkpoint already holds the weights)");
  EMBER_CHECK(o.bn_stats == BnStats::Micro || o.norm != NormKind::None,
              "--bn-stats window: needs batch norm (--norm batch), got --norm none");
  EMBER_CHECK(o.bn_stats == BnStats::Micro || o.norm != NormKind::Sync,
              "--bn-stats window: not available with --norm sync (SyncBatchNorm already normalizes each "
              "micro-step by the statistics of all ranks; window-merged running statistics are implemented for "
              "--norm batch only)");
  EMBER_CHECK(!o.data_dir.empty(), "--data: empty directory");
  EMBER_CHECK(o.limit_train >= 0, "--limit-train: must be >= 0, got ", o.limit_train);
  EMBER_CHECK(o.limit_test >= 0, "--limit-test: must be >= 0, got ", o.limit_test);
  if (o.model == ModelKind::GPT) validate_lm(o);
}

namespace {

/// The flags only ember-train has: which image model and its batch norm.
struct ImageFlags {
  Choice<ModelKind> model;
  Choice<NormKind> norm;
  Choice<BnStats> bn;

  explicit ImageFlags(TrainOptions& o)
      : model{"", {{"mlp", ModelKind::MLP}, {"cnn", ModelKind::CNN}}, &o.model, "--model"},
        norm{"", {{"batch", NormKind::Batch}, {"none", NormKind::None}, {"sync", NormKind::Sync}}, &o.norm, "--norm"},
        bn{"", {{"micro", BnStats::Micro}, {"window", BnStats::Window}}, &o.bn_stats, "--bn-stats"} {}

  void add(CLI::App& app) {
    app.add_option("--model", model.text, "Model: mlp (784-512-256-10) or cnn (2 conv + fc) [default: cnn]");
    app.add_option("--norm", norm.text,
                   "Normalization: batch (BatchNorm per micro-batch), none (no bn layers), sync (SyncBatchNorm "
                   "across the ranks of an mpirun job) [default: batch]");
    app.add_option("--bn-stats", bn.text,
                   "BatchNorm running statistics: micro (updated every micro-batch, as PyTorch) or window (merged "
                   "over the accumulation window and all ranks, one update per optimizer step: the first BN layer's "
                   "then equal the large batch's, later BN layers' only approximately; --norm batch only) "
                   "[default: micro]");
  }
  void apply() const {
    model.apply();
    norm.apply();
    bn.apply();
  }
};

/// The flags only ember-train-lm has: the GPT's shape, the cutting of the text, the sample at the end.
void add_lm_flags(CLI::App& app, LmOptions& lm) {
  app.add_option("--block-size", lm.block_size, "Context length T in bytes (tokens per sequence)");
  app.add_option("--layers", lm.layers, "Transformer blocks");
  app.add_option("--heads", lm.heads, "Attention heads per block (--dim must be a multiple)");
  app.add_option("--dim", lm.dim, "Embedding width C");
  app.add_flag("--pad,!--pack", lm.pad, "Cut the text into sequences document by document, padding each with "
                                        "ignore_index (token counts then differ per micro-batch) instead of "
                                        "packing all documents into one stream [default: --pack]");
  app.add_option("--sample", lm.sample, "Print this many generated bytes after training (0 = none)");
  app.add_option("--prompt", lm.prompt, "What the sample continues");
  app.add_option("--temperature", lm.temperature, "Sampling temperature (0 = always the most likely byte)");
}

/// Parses the command line of the program `defaults` belong to (model GPT: ember-train-lm): its own model
/// flags first, then the flags both programs share.
CliResult parse(int argc, const char* const* argv, TrainOptions defaults) {
  CliResult r;
  r.options = std::move(defaults);
  TrainOptions& o = r.options;
  const bool lm = o.model == ModelKind::GPT;
  CLI::App app{lm ? "ember-train-lm: trains a GPT (nanoGPT's layout) on Debian's fortunes, byte by byte, with "
                    "micro-batch gradient accumulation normalized by the window's real token count; effective "
                    "batch = micro-batch x accum x world size sequences."
                  : "ember-train: trains an MLP or a CNN (optionally with batch norm) on Fashion-MNIST with "
                    "micro-batch gradient accumulation; effective batch = micro-batch x accum x world size.",
               program_name(o)};
  app.option_defaults()->always_capture_default();
  app.get_formatter()->column_width(32);

  ImageFlags image(o);
  Choice<OptimizerKind> opt{"", {{"sgd", OptimizerKind::SGD}, {"adamw", OptimizerKind::AdamW}}, &o.optimizer,
                            "--optimizer"};
  Choice<ScheduleKind> sched{"", {{"constant", ScheduleKind::Constant}, {"cosine", ScheduleKind::Cosine}},
                             &o.schedule, "--schedule"};
  Choice<DeviceChoice> dev{"", {{"auto", DeviceChoice::Auto}, {"cpu", DeviceChoice::CPU}, {"cuda", DeviceChoice::CUDA}},
                           &o.device, "--device"};

  if (lm)
    add_lm_flags(app, o.lm);
  else
    image.add(app);
  const char* unit = lm ? "Sequences" : "Samples";
  app.add_option("--micro-batch", o.micro_batch, std::string(unit) + " per micro-batch per rank (B)");
  app.add_option("--accum", o.accum, "Micro-batches accumulated per optimizer step (N)");
  app.add_option("--epochs", o.epochs, "Passes over the training set");
  app.add_option("--steps", o.steps, "Stop after K optimizer steps (0 = run all epochs)");
  app.add_option("--dropout", o.dropout,
                 std::string(lm ? "Dropout probability (nanoGPT's places: embeddings, attention and MLP outputs)"
                                : "Dropout probability after each hidden layer (mlp: after relu1 and relu2; cnn: "
                                  "before fc)") +
                     "; each micro-batch draws its masks from (seed, epoch, its global index), so ranks draw "
                     "different masks [default: 0 = none]");
  app.add_flag("--drop-last", o.drop_last, "Drop each epoch's incomplete last global micro-step (as PyTorch's "
                                           "drop_last). Without it the short step trains, except that a 1-sample "
                                           "micro-batch, which batch norm cannot normalize in training (mlp with "
                                           "--norm batch or sync), is dropped with a log line");
  app.add_option("--optimizer", opt.text, "Optimizer: sgd (momentum) or adamw [default: adamw]");
  app.add_option("--lr", o.lr, lm ? "Peak learning rate [default: 1e-3 for adamw, 0.05 for sgd]"
                                  : "Peak learning rate [default: 3e-3 for adamw, 0.05 for sgd]");
  app.add_option("--momentum", o.momentum, "SGD momentum in [0, 1) [default: 0.9]");
  app.add_option("--weight-decay", o.weight_decay, "Weight decay (decoupled for adamw) [default: 0.01 adamw, 0 sgd]");
  app.add_option("--schedule", sched.text, "Learning-rate schedule: constant or cosine (decay to 0 over the run) "
                                           "[default: cosine]");
  app.add_option("--warmup", o.warmup, "Linear learning-rate warm-up, in optimizer steps");
  app.add_option("--clip-norm", o.clip_norm, "Clip the global gradient L2 norm to this value (0 = off)");
  app.add_option("--bucket-mb", o.bucket_mb, "Data parallel: gradient bucket capacity in MiB; the first bucket (the "
                                             "last layers) holds at most 1 MiB, so its all-reduce starts early "
                                             "[default: 25]");
  app.add_option("--seed", o.seed, "Seed for initialization, shuffling and dropout");
  app.add_flag("--shuffle,!--no-shuffle", o.shuffle, "Reshuffle the training set every epoch (--no-shuffle: "
                                                     "fixed order)");
  app.add_option("--device", dev.text, "Device: auto (cuda when a GPU is present, else cpu), cpu or cuda "
                                       "[default: auto]");
  app.add_option("--threads", o.threads, "CPU threads for OpenMP and OpenBLAS (0 = their default)");
  app.add_option("--data", o.data_dir, lm ? "Directory of fortune files (Debian's fortunes package); files are split "
                                            "into training and validation by name"
                                          : "Directory with the Fashion-MNIST IDX (.gz) files");
  app.add_option("--init", o.init, "Load model weights (safetensors, PyTorch state_dict names) before training");
  app.add_option("--save", o.save, "Write a checkpoint (weights + optimizer state + run position) here at the end");
  app.add_option("--resume", o.resume, "Continue the run saved in this checkpoint (ends bit-identical to an "
                                       "uninterrupted run on the same device and thread count)");
  app.add_option("--checkpoint-every", o.checkpoint_every, "Also write the --save checkpoint every K optimizer steps");
  app.add_option("--metrics", o.metrics, "Write one CSV row per optimizer step to this file (--resume continues it)");
  app.add_option("--plot", o.plot, lm ? "Draw the loss curve and validation accuracy to this PNG (needs gnuplot)"
                                      : "Draw the loss curve and test accuracy to this PNG (needs gnuplot)");
  app.add_option("--summary", o.summary, "Write a JSON summary of the run to this file");
  app.add_option("--log-every", o.log_every, "Optimizer steps between log lines when stdout is not a terminal");
  app.add_flag("--progress,!--no-progress", o.progress, "Live progress bar when stdout is a terminal");
  app.add_option("--limit-train", o.limit_train, std::string("Use only the first N training ") +
                                                     (lm ? "sequences" : "samples") + " (tests)")->group("");
  app.add_option("--limit-test", o.limit_test, std::string("Evaluate on the first N ") +
                                                   (lm ? "validation sequences" : "test samples") + " (tests)")
      ->group("");

  require_decimal_integers(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    r.exit_now = true;
    r.text = app.help();
    return r;
  } catch (const CLI::ParseError& e) {
    EMBER_FAIL(e.what());
  } catch (const std::exception& e) {  // not CLI11's: name the flag and the value here
    EMBER_FAIL(describe_bad_argument(app, argc, argv, e));
  }
  if (!lm) image.apply();
  opt.apply();
  sched.apply();
  dev.apply();
  validate(o);
  return r;
}

CliResult parse_args(const std::vector<std::string>& args, const char* program,
                     CliResult (*parse_argv)(int, const char* const*)) {
  std::vector<const char*> argv{program};
  for (const auto& a : args) argv.push_back(a.c_str());
  return parse_argv(static_cast<int>(argv.size()), argv.data());
}

}  // namespace

const char* program_name(const TrainOptions& o) { return o.model == ModelKind::GPT ? "ember-train-lm" : "ember-train"; }

TrainOptions lm_defaults() {
  TrainOptions o;
  o.model = ModelKind::GPT;
  o.norm = NormKind::None;
  o.micro_batch = 16;
  o.accum = 4;
  o.epochs = 2;
  o.warmup = 20;
  o.clip_norm = 1.0;
  o.data_dir = "/usr/share/games/fortunes";
  o.log_every = 50;
  return o;
}

CliResult parse_cli(int argc, const char* const* argv) { return parse(argc, argv, TrainOptions{}); }
CliResult parse_cli(const std::vector<std::string>& args) { return parse_args(args, "ember-train", parse_cli); }
CliResult parse_lm_cli(int argc, const char* const* argv) { return parse(argc, argv, lm_defaults()); }
CliResult parse_lm_cli(const std::vector<std::string>& args) {
  return parse_args(args, "ember-train-lm", parse_lm_cli);
}

}  // namespace ember::train
