/// @file kernels/cuda/multi_tensor.h @brief Host-side chunk planning for multi-tensor kernels (apex's multi_tensor_apply): which (tensor, chunk) each block of each launch works on.
//
// A list of tensors is cut into chunks of kChunkElems elements; every launch carries, by value, the
// pointers of up to kMaxTensors tensors and the (tensor slot, chunk) of up to kMaxBlocks blocks. A
// tensor whose chunks do not all fit in one launch continues in the next one (it becomes slot 0 there).
#pragma once
#include <cstdint>
#include <span>

namespace ember::cuda {

inline constexpr int kMaxTensors = 48;
inline constexpr int kMaxBlocks = 320;
inline constexpr int64_t kChunkElems = 65536;

/// One launch's worth of work: slots -> caller's tensor indices; blocks -> (slot, chunk).
struct ChunkLaunch {
  int num_tensors = 0;
  int64_t tensor_of_slot[kMaxTensors] = {};
  int num_blocks = 0;
  uint8_t slot_of_block[kMaxBlocks] = {};
  int32_t chunk_of_block[kMaxBlocks] = {};
};

/// Calls launch(const ChunkLaunch&) for each launch needed to cover every element of tensors with
/// `numels` (empty tensors are skipped), in list order, with at most `max_blocks` (1..kMaxBlocks)
/// blocks per launch (launchers pass grid_cap(kMaxBlocks), which a test may lower).
template <class F>
void plan_chunks(std::span<const int64_t> numels, int max_blocks, F&& launch) {
  ChunkLaunch l;
  for (size_t t = 0; t < numels.size(); ++t) {
    const int64_t chunks = (numels[t] + kChunkElems - 1) / kChunkElems;
    if (chunks == 0) continue;
    l.tensor_of_slot[l.num_tensors++] = static_cast<int64_t>(t);
    for (int64_t c = 0; c < chunks; ++c) {
      l.slot_of_block[l.num_blocks] = static_cast<uint8_t>(l.num_tensors - 1);
      l.chunk_of_block[l.num_blocks] = static_cast<int32_t>(c);
      ++l.num_blocks;
      const bool last_chunk = c == chunks - 1;
      if (l.num_blocks == max_blocks || (last_chunk && l.num_tensors == kMaxTensors)) {
        launch(static_cast<const ChunkLaunch&>(l));
        l.num_blocks = 0;
        l.num_tensors = 0;
        if (!last_chunk) l.tensor_of_slot[l.num_tensors++] = static_cast<int64_t>(t);  // continues as slot 0
      }
    }
  }
  if (l.num_blocks > 0) launch(static_cast<const ChunkLaunch&>(l));
}

}  // namespace ember::cuda
