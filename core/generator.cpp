/// @file core/generator.cpp @brief micro_batch_generator: the per-micro-batch key hash.
#include "core/generator.h"

#include "core/error.h"

namespace ember {

namespace {

/// splitmix64's finalizer (Steele, Lea, Flood 2014): a bijection of 64-bit words that mixes every input
/// bit into every output bit.
uint64_t mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

Generator micro_batch_generator(uint64_t seed, int64_t epoch, int64_t micro_batch_index) {
  EMBER_CHECK(epoch >= 0, "micro_batch_generator: negative epoch ", epoch);
  EMBER_CHECK(micro_batch_index >= 0, "micro_batch_generator: negative micro-batch index ", micro_batch_index);
  // A domain constant keeps these keys apart from manual_seed(seed)'s key (the initialization stream).
  const uint64_t per_epoch = mix64(mix64(seed ^ 0x6D6963726F2D6262ull) ^ static_cast<uint64_t>(epoch));
  return Generator(mix64(per_epoch ^ static_cast<uint64_t>(micro_batch_index)));
}

}  // namespace ember
