/// @file fuzz/fuzz_cli.cpp @brief libFuzzer target: ember-train's command line (CLI11 parsing + validate()) on arbitrary argument lists; only ember::Error may escape, and accepted options must satisfy the documented ranges.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.h"
#include "examples/ember_train/cli.h"

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_cli: %s\n", what);
  std::abort();
}

}  // namespace

/// The input is a list of arguments separated by NUL or newline bytes (at most 64).
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> args(1);
  for (size_t i = 0; i < size && args.size() <= 64; ++i) {
    const char c = static_cast<char>(data[i]);
    if (c == '\0' || c == '\n')
      args.emplace_back();
    else
      args.back().push_back(c);
  }
  if (args.size() > 64) return 0;
  if (args.size() == 1 && args[0].empty()) args.clear();
  ember::train::CliResult r;
  try {
    r = ember::train::parse_cli(args);
  } catch (const ember::Error& e) {
    if (e.message().empty()) fail("an error without a message");
    return 0;
  }
  if (r.exit_now) {
    if (r.text.empty()) fail("--help printed nothing");
    return 0;
  }
  const ember::train::TrainOptions& o = r.options;
  // What validate() promises the training loop.
  if (o.micro_batch < 1 || o.accum < 1 || o.micro_batch > (int64_t{1} << 20) || o.accum > (int64_t{1} << 20))
    fail("accepted a micro-batch or accum outside [1, 2^20]");
  if (o.epochs < 1 || o.epochs > (int64_t{1} << 20) || o.steps < 0 || o.warmup < 0 || o.checkpoint_every < 0 || o.log_every < 1) fail("accepted a count out of range");
  if (!(std::isfinite(o.resolved_lr()) && o.resolved_lr() > 0)) fail("accepted a non-positive or non-finite lr");
  if (!(std::isfinite(o.resolved_weight_decay()) && o.resolved_weight_decay() >= 0)) fail("accepted a bad weight decay");
  if (!(std::isfinite(o.clip_norm) && o.clip_norm >= 0)) fail("accepted a bad clip norm");
  if (!(o.dropout >= 0 && o.dropout < 1)) fail("accepted a dropout probability outside [0, 1)");
  const double m = o.resolved_momentum();
  if (!(m >= 0 && m < 1)) fail("accepted a momentum outside [0, 1)");
  if (o.checkpoint_every > 0 && o.save.empty()) fail("accepted --checkpoint-every without --save");
  if (!o.init.empty() && !o.resume.empty()) fail("accepted --init with --resume");
  if (o.threads < 0 || o.threads > 1024 || o.limit_train < 0 || o.limit_test < 0) fail("accepted a bad thread or limit count");
  try {
    ember::train::validate(o);  // parse_cli's result must pass validate() again
  } catch (const ember::Error&) {
    fail("parse_cli returned options that validate() rejects");
  }
  return 0;
}
