/// @file core/generator.h @brief micro_batch_generator: the random stream of one micro-batch of a training run, from (seed, epoch, global micro-batch index).
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace ember {

/// The random stream of one micro-batch of a training run: a Generator (core/tensor.h) at offset 0 whose
/// Philox key is a hash of (seed, epoch, micro_batch_index) (chained splitmix64 finalizers). Set it as the
/// default generator (or pass it to the model's Dropout) before each micro-batch's forward, with the
/// micro-batch's global index within the epoch (data::DataLoader::global_index), and the masks of a
/// micro-batch depend only on which micro-batch it is: not on the rank that computes it, on how many
/// micro-batches came before on that rank, or on where a resumed run started. So R ranks x accum A draw
/// the same masks as one rank x accum R*A over the same micro-batches. For one (seed, epoch) the keys of
/// distinct indices are distinct (the hash is a bijection of the index); across epochs or seeds two keys
/// coincide with probability 2^-64 per pair. Throws ember::Error for a negative epoch or index.
Generator micro_batch_generator(uint64_t seed, int64_t epoch, int64_t micro_batch_index);

}  // namespace ember
