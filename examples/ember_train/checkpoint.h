/// @file examples/ember_train/checkpoint.h @brief ember-train checkpoints: model state_dict + "optim." tensors + run position in one safetensors file.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/safetensors.h"

namespace ember::train {

/// Where a run stands at an optimizer-step boundary: everything besides tensors that a resumed run needs
/// to continue bit-identically.
struct RunPosition {
  int64_t epoch = 0;            ///< 0-based epoch in progress
  int64_t micro_step = 0;       ///< next global micro-step of that epoch
  int64_t optimizer_steps = 0;  ///< optimizer steps done (skipped windows not included)
  int64_t micro_steps = 0;      ///< micro-batches done
  int64_t skipped_steps = 0;    ///< steps skipped for non-finite gradients
  uint64_t rng_seed = 0;        ///< Ember's default generator (dropout, init)
  uint64_t rng_offset = 0;
};

/// Prefix of optimizer-state tensors in a checkpoint ("optim.fc1.weight.exp_avg", ...).
inline constexpr const char* kOptimPrefix = "optim.";

/// A checkpoint split into its parts.
struct Checkpoint {
  NamedTensors model;             ///< PyTorch state_dict names ("fc1.weight", "bn1.running_var", ...)
  NamedTensors optim;             ///< names without the "optim." prefix
  RunPosition position;
  SafetensorsMetadata config;        ///< "config.*" entries: the settings a resume must match, device and threads
  bool has_position = false;         ///< false for a plain weights file (e.g. from PyTorch)
};

/// Writes model tensors, optimizer tensors (prefixed "optim."), the position and the config (both in
/// __metadata__) atomically to `path`.
void save_checkpoint(const std::string& path, const NamedTensors& model, const NamedTensors& optim,
                     const RunPosition& position, const SafetensorsMetadata& config);

/// Reads a checkpoint or a plain weights file. Throws ember::Error naming the file and the problem for a
/// malformed file or a malformed position entry.
Checkpoint load_checkpoint(const std::string& path);

/// The "config.*" entries that say where a run ran rather than what it computes: "config.device"
/// (`device_type`: cpu or cuda) and "config.threads" (the OpenMP threads it ran with). A resume with other
/// values continues the run, but the result is promised bit-identical only with the same ones.
SafetensorsMetadata environment_config(const std::string& device_type, int threads);

/// Compares the "config.*" entries of a checkpoint (`saved`) with the resuming run's (`current`). Throws an
/// ember::Error listing every difference in a setting that determines the updates (a resume with other
/// settings would not continue the run; an entry on one side only counts as a difference). Returns one
/// line per difference in an environment_config() entry (device, threads), saying that bit-identity is
/// only promised under equal settings; the caller logs them and goes on.
std::vector<std::string> check_same_config(const std::string& path, const SafetensorsMetadata& saved,
                                           const SafetensorsMetadata& current);

}  // namespace ember::train
