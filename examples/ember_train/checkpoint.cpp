/// @file examples/ember_train/checkpoint.cpp @brief Checkpoint (de)composition: tensor namespaces and the run position in __metadata__.
#include "examples/ember_train/checkpoint.h"

#include <charconv>

#include "core/error.h"

namespace ember::train {

namespace {

constexpr const char* kFormatKey = "format";
constexpr const char* kFormat = "ember-train-checkpoint/1";
constexpr const char* kConfigPrefix = "config.";
constexpr const char* kDeviceKey = "config.device";
constexpr const char* kThreadsKey = "config.threads";

template <class T>
T parse_number(const std::string& path, const SafetensorsMetadata& m, const std::string& key) {
  auto it = m.find(key);
  EMBER_CHECK(it != m.end(), "checkpoint ", path, ": __metadata__ lacks \"", key, "\"");
  T v{};
  const std::string& s = it->second;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  EMBER_CHECK(ec == std::errc() && end == s.data() + s.size(), "checkpoint ", path, ": __metadata__ \"", key,
              "\" is not an integer: '", s, "'");
  return v;
}

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

}  // namespace

void save_checkpoint(const std::string& path, const NamedTensors& model, const NamedTensors& optim,
                     const RunPosition& p, const SafetensorsMetadata& config) {
  NamedTensors all = model;
  for (const auto& [name, t] : optim) all.emplace_back(kOptimPrefix + name, t);
  SafetensorsMetadata meta = config;
  meta[kFormatKey] = kFormat;
  meta["epoch"] = std::to_string(p.epoch);
  meta["micro_step"] = std::to_string(p.micro_step);
  meta["optimizer_steps"] = std::to_string(p.optimizer_steps);
  meta["micro_steps"] = std::to_string(p.micro_steps);
  meta["skipped_steps"] = std::to_string(p.skipped_steps);
  meta["rng_seed"] = std::to_string(p.rng_seed);
  meta["rng_offset"] = std::to_string(p.rng_offset);
  save_safetensors(path, all, meta);
}

Checkpoint load_checkpoint(const std::string& path) {
  SafetensorsContent c = load_safetensors(path);
  Checkpoint out;
  for (auto& [name, t] : c.tensors) {
    if (starts_with(name, kOptimPrefix))
      out.optim.emplace_back(name.substr(std::string(kOptimPrefix).size()), t);
    else
      out.model.emplace_back(name, t);
  }
  for (const auto& [k, v] : c.metadata)
    if (starts_with(k, kConfigPrefix)) out.config[k] = v;
  auto fmt = c.metadata.find(kFormatKey);
  if (fmt == c.metadata.end()) return out;  // a plain weights file
  EMBER_CHECK(fmt->second == kFormat, "checkpoint ", path, ": format '", fmt->second, "' is not ", kFormat);
  const SafetensorsMetadata& m = c.metadata;
  RunPosition& p = out.position;
  p.epoch = parse_number<int64_t>(path, m, "epoch");
  p.micro_step = parse_number<int64_t>(path, m, "micro_step");
  p.optimizer_steps = parse_number<int64_t>(path, m, "optimizer_steps");
  p.micro_steps = parse_number<int64_t>(path, m, "micro_steps");
  p.skipped_steps = parse_number<int64_t>(path, m, "skipped_steps");
  p.rng_seed = parse_number<uint64_t>(path, m, "rng_seed");
  p.rng_offset = parse_number<uint64_t>(path, m, "rng_offset");
  EMBER_CHECK(p.epoch >= 0 && p.micro_step >= 0 && p.optimizer_steps >= 0 && p.micro_steps >= 0 &&
                  p.skipped_steps >= 0,
              "checkpoint ", path, ": negative run position");
  out.has_position = true;
  return out;
}

SafetensorsMetadata environment_config(const std::string& device_type, int threads) {
  return {{kDeviceKey, device_type}, {kThreadsKey, std::to_string(threads)}};
}

std::vector<std::string> check_same_config(const std::string& path, const SafetensorsMetadata& saved,
                                           const SafetensorsMetadata& current) {
  auto value = [](const SafetensorsMetadata& m, const std::string& k) {
    auto it = m.find(k);
    return it == m.end() ? std::string("(absent)") : it->second;
  };
  SafetensorsMetadata keys = saved;  // every key of either side, sorted
  keys.insert(current.begin(), current.end());
  std::string diffs;
  std::vector<std::string> warnings;
  for (const auto& [k, _] : keys) {
    const std::string was = value(saved, k), now = value(current, k);
    if (was == now) continue;
    const std::string what = k.substr(std::string(kConfigPrefix).size()) + ": checkpoint " + was + ", now " + now;
    if (k == kDeviceKey || k == kThreadsKey)
      warnings.push_back("--resume " + path + ": " + what + "; the run continues, but it is bit-identical to an "
                         "uninterrupted run only with the same device and thread count");
    else
      diffs += "\n  " + what;
  }
  EMBER_CHECK(diffs.empty(), "--resume ", path, ": the checkpoint was written with other settings:", diffs);
  return warnings;
}

}  // namespace ember::train
