/// @file kernels/cuda/optimizer.cu @brief CUDA fused multi-tensor optimizer updates (SGD, AdamW): chunk lists passed by value, one launch per list, block partials of the gradient norm.
#include <array>
#include <cmath>
#include <optional>
#include <type_traits>
#include <vector>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/multi_tensor.h"
#include "kernels/cuda/partials.cuh"
#include "kernels/cuda/device_scratch.h"
#include "kernels/dispatch.h"
#include "kernels/optimizer.h"

namespace ember::cuda {
namespace {

constexpr int kThreads = 512;  ///< threads per block (a power of two: the tree reduction needs it)
constexpr int64_t kChunk = kChunkElems;  ///< elements one block updates (kernels/cuda/multi_tensor.h)

/// The metadata of one launch (planned by plan_chunks in kernels/cuda/multi_tensor.h), passed by value
/// as a kernel argument like apex's multi_tensor_apply (3,520 bytes at Depth 4, under the 4 KiB
/// parameter limit): for up to kMaxTensors tensors, Depth pointers each (row 0 the parameter, row 1 the
/// gradient, which is only read, then the state) and the element count; for every block, which tensor
/// and which chunk of it the block updates.
template <int Depth>
struct ChunkList {
  float* ptrs[Depth][kMaxTensors];
  int64_t sizes[kMaxTensors];
  uint8_t block_tensor[kMaxBlocks];
  int32_t block_chunk[kMaxBlocks];
};
// No padding bytes: the emulator checks the pointers of padding-free structs only (launch.h).
static_assert(std::has_unique_object_representations_v<ChunkList<2>> &&
              std::has_unique_object_representations_v<ChunkList<4>>);

struct SgdArgs {
  float lr, momentum, keep, weight_decay, scale;  ///< keep = 1 - dampening
  bool use_momentum, use_weight_decay, nesterov, init_momentum;
};

struct AdamWArgs {
  float decay, step_size, bc2_sqrt, eps, beta1, beta2, one_minus_beta1, one_minus_beta2, scale;
};

/// The kernels' view of a StepGate: `status` null (no gate), read (decide) or report.
struct GateArgs {
  const double* status;
  double clip_norm;
  bool read, skip_non_finite;
};

/// A reading gate's decision for this launch (every thread computes the same from two doubles): false
/// when the update must be skipped; otherwise `clip`/`coef` say whether to multiply by the clip coefficient.
__device__ inline bool gate_allows(const GateArgs& g, bool& clip, float& coef) {
  clip = false;
  coef = 1.0f;
  if (g.status == nullptr || !g.read) return true;
  const kernels::GateDecision d = kernels::step_gate_decision(
      g.status[kStatusSumSquares], g.status[kStatusNonFinite], g.clip_norm, g.skip_non_finite);
  clip = d.clip;
  coef = static_cast<float>(d.clip_coef);
  return !d.skip;
}

__device__ inline bool finite(float x) { return fabsf(x) <= 3.402823466e+38f; }  // false for NaN and +-Inf

/// The [begin, end) element range of this block's chunk.
template <int Depth>
__device__ inline void chunk_range(const ChunkList<Depth>& list, int& t, int64_t& begin, int64_t& end) {
  t = list.block_tensor[blockIdx.x];
  begin = static_cast<int64_t>(list.block_chunk[blockIdx.x]) * kChunk;
  end = begin + kChunk < list.sizes[t] ? begin + kChunk : list.sizes[t];
}

/// Block-wide tree sums of `sq` and `bad` (every thread calls it); thread 0 writes them to
/// partials[slot] and partials[slots + slot]. `red` holds blockDim.x doubles. No-op without partials
/// (the same for the whole launch).
__device__ inline void block_partials(double sq, double bad, double* red, double* partials, int64_t slot,
                                      int64_t slots) {
  if (partials == nullptr) return;
  for (int pass = 0; pass < 2; ++pass) {
    red[threadIdx.x] = pass == 0 ? sq : bad;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
      if (threadIdx.x < s) red[threadIdx.x] += red[threadIdx.x + s];
      __syncthreads();
    }
    if (threadIdx.x == 0) partials[pass * slots + slot] = red[0];
    __syncthreads();
  }
}

/// Lane i (0..3) of a float4 (the four floats are contiguous).
__device__ inline float& lane(float4& v, int i) { return (&v.x)[i]; }

/// Runs upd(e, sq, bad) on every element of [begin, end): e[0] the parameter, e[1] the gradient (read
/// only), e[2..] the state (rows that are null read as 0 and are not written). float4 loads and stores
/// when every row is 16-byte aligned at `begin` (cudaMalloc'd tensors are, and chunks start at multiples
/// of 65536 elements), then scalars for the tail; the block's threads stride over the float4s.
template <int Depth, class Update>
__device__ inline void update_range(float* const (&row)[Depth], int64_t begin, int64_t end, const Update& upd,
                                    double& sq, double& bad) {
  bool aligned = true;
  for (int d = 0; d < Depth; ++d)
    aligned = aligned && (row[d] == nullptr || reinterpret_cast<uintptr_t>(row[d] + begin) % 16 == 0);
  int64_t tail = begin;
  if (aligned) {
    const int64_t n4 = (end - begin) / 4;
    for (int64_t k = threadIdx.x; k < n4; k += blockDim.x) {
      float4 x[Depth];
      for (int d = 0; d < Depth; ++d)
        x[d] = row[d] ? reinterpret_cast<const float4*>(row[d] + begin)[k] : make_float4(0.f, 0.f, 0.f, 0.f);
      for (int i = 0; i < 4; ++i) {
        float e[Depth];
        for (int d = 0; d < Depth; ++d) e[d] = lane(x[d], i);
        upd(e, sq, bad);
        for (int d = 0; d < Depth; ++d) lane(x[d], i) = e[d];
      }
      for (int d = 0; d < Depth; ++d)
        if (d != 1 && row[d] != nullptr) reinterpret_cast<float4*>(row[d] + begin)[k] = x[d];
    }
    tail = begin + n4 * 4;
  }
  for (int64_t k = tail + threadIdx.x; k < end; k += blockDim.x) {
    float e[Depth];
    for (int d = 0; d < Depth; ++d) e[d] = row[d] ? row[d][k] : 0.0f;
    upd(e, sq, bad);
    for (int d = 0; d < Depth; ++d)
      if (d != 1 && row[d] != nullptr) row[d][k] = e[d];
  }
}

/// The gradient an update uses: raw * scale, times the gate's clip coefficient when it clips; adds its
/// square to `sq` and flags a non-finite raw value in `bad`.
__device__ inline float scaled_grad(float raw, float scale, bool clip, float coef, double& sq, double& bad) {
  if (!finite(raw)) bad = 1.0;
  float d = raw * scale;
  if (clip) d = d * coef;
  sq += static_cast<double>(d) * static_cast<double>(d);
  return d;
}

/// One element of PyTorch's SGD: e = {param, grad, momentum buffer}.
struct SgdUpdate {
  SgdArgs a;
  bool clip;
  float coef;
  __device__ void operator()(float (&e)[3], double& sq, double& bad) const {
    float d = scaled_grad(e[1], a.scale, clip, coef, sq, bad);
    if (a.use_weight_decay) d += a.weight_decay * e[0];
    if (a.use_momentum) {
      const float b = a.init_momentum ? d : a.momentum * e[2] + a.keep * d;
      e[2] = b;
      d = a.nesterov ? d + a.momentum * b : b;
    }
    e[0] -= a.lr * d;
  }
};

/// One element of PyTorch's AdamW: e = {param, grad, exp_avg, exp_avg_sq}.
struct AdamWUpdate {
  AdamWArgs a;
  bool clip;
  float coef;
  __device__ void operator()(float (&e)[4], double& sq, double& bad) const {
    const float d = scaled_grad(e[1], a.scale, clip, coef, sq, bad);
    const float mi = a.beta1 * e[2] + a.one_minus_beta1 * d;
    const float vi = a.beta2 * e[3] + a.one_minus_beta2 * d * d;
    e[2] = mi;
    e[3] = vi;
    e[0] = e[0] * a.decay - a.step_size * mi / (sqrtf(vi) / a.bc2_sqrt + a.eps);
  }
};

/// The fused update of one chunk per block (Update: SgdUpdate or AdamWUpdate, Args its hyper-parameters).
/// Launch: grid = chunks in the list (<= kMaxBlocks), block = kThreads, dynamic shared = kThreads
/// doubles. Bytes per element: SGD 4 read (grad) + 4 read + 4 written (param) + 4 read + 4 written
/// (momentum buffer, when on) = 12 or 20; AdamW 4 + 3 x 8 = 28; plus 16 per block read from a reading
/// gate's status or written as partials when reporting. A skipping gate makes every block return at
/// once, before any write.
template <int Depth, class Update, class Args>
__global__ void fused_update_kernel(ChunkList<Depth> list, Args a, GateArgs gate, double* partials, int64_t slot0,
                                    int64_t slots) {
  EMBER_DYNAMIC_SHARED(double, red);
  bool clip;
  float coef;
  if (!gate_allows(gate, clip, coef)) return;
  int t;
  int64_t begin, end;
  chunk_range(list, t, begin, end);
  float* row[Depth];
  for (int d = 0; d < Depth; ++d) row[d] = list.ptrs[d][t];
  double sq = 0.0, bad = 0.0;
  update_range(row, begin, end, Update{a, clip, coef}, sq, bad);
  block_partials(sq, bad, red, partials, slot0 + blockIdx.x, slots);
}

// ---------------------------------------------------------------- launchers

/// Splits the tensors (rows of Depth pointers, with their sizes) into chunk lists and launches
/// fused_update_kernel<Depth, Update> on each (`name` for launch errors). A reporting gate gets the block
/// partials added into its status by finalize_partials; no host synchronization either way.
template <int Depth, class Update, class Args>
void fused_update(const std::vector<std::array<float*, Depth>>& rows, const std::vector<int64_t>& sizes, const Args& a,
                  const StepGate& gate, const char* name) {
  int64_t slots = 0;
  for (int64_t n : sizes) slots += (n + kChunk - 1) / kChunk;
  if (slots == 0) return;
  GateArgs g{nullptr, gate.clip_norm, gate.read, gate.skip_non_finite};
  double* status = nullptr;
  if (gate.status.defined()) status = static_cast<double*>(gate.status.data_ptr()), g.status = status;
  const bool report = status != nullptr && !gate.read;
  std::optional<DeviceScratch> partials;  // [sums: one per block][flags: one per block]
  if (report) partials.emplace(current_device(), static_cast<size_t>(2 * slots) * sizeof(double));
  double* out = report ? reinterpret_cast<double*>(partials->get()) : nullptr;

  int64_t slot = 0;
  plan_chunks(std::span<const int64_t>(sizes), static_cast<int>(grid_cap(kMaxBlocks)), [&](const ChunkLaunch& l) {
    ChunkList<Depth> list{};
    for (int s = 0; s < l.num_tensors; ++s) {
      const auto t = static_cast<size_t>(l.tensor_of_slot[s]);
      for (int d = 0; d < Depth; ++d) list.ptrs[d][s] = rows[t][static_cast<size_t>(d)];
      list.sizes[s] = sizes[t];
    }
    for (int b = 0; b < l.num_blocks; ++b) {
      list.block_tensor[b] = l.slot_of_block[b];
      list.block_chunk[b] = l.chunk_of_block[b];
    }
    launch(fused_update_kernel<Depth, Update, Args>, dim3(static_cast<unsigned>(l.num_blocks)), dim3(kThreads),
           kThreads * sizeof(double), stream(), list, a, g, out, slot, slots);
    EMBER_CUDA_CHECK_LAUNCH(name);
    slot += l.num_blocks;
  });
  if (report) finalize_partials(out, out + slots, slots, status, /*add=*/true);
}

float* f32_ptr(const Tensor& t, const char* op) {
  EMBER_CHECK(t.dtype() == DType::f32, op, " (cuda): only f32 is supported, got ", describe(t));
  return static_cast<float*>(t.data_ptr());
}

void sgd_step(std::span<Tensor> params, std::span<const Tensor> grads, std::span<Tensor> bufs,
              const kernels::SgdStepOptions& o, double grad_scale, const StepGate& gate) {
  const bool use_momentum = o.momentum != 0.0;
  std::vector<std::array<float*, 3>> rows;
  std::vector<int64_t> sizes;
  for (size_t i = 0; i < params.size(); ++i) {
    rows.push_back({f32_ptr(params[i], "sgd_step"), f32_ptr(grads[i], "sgd_step"),
                    use_momentum ? f32_ptr(bufs[i], "sgd_step") : nullptr});
    sizes.push_back(params[i].numel());
  }
  const SgdArgs a{static_cast<float>(o.lr), static_cast<float>(o.momentum), static_cast<float>(1.0 - o.dampening),
                  static_cast<float>(o.weight_decay), static_cast<float>(grad_scale), use_momentum,
                  o.weight_decay != 0.0, o.nesterov, o.init_momentum};
  fused_update<3, SgdUpdate>(rows, sizes, a, gate, "fused_update_kernel<SGD>");
}

void adamw_step(std::span<Tensor> params, std::span<const Tensor> grads, std::span<Tensor> exp_avgs,
                std::span<Tensor> exp_avg_sqs, const kernels::AdamWStepOptions& o, int64_t step, double grad_scale,
                const StepGate& gate) {
  std::vector<std::array<float*, 4>> rows;
  std::vector<int64_t> sizes;
  for (size_t i = 0; i < params.size(); ++i) {
    rows.push_back({f32_ptr(params[i], "adamw_step"), f32_ptr(grads[i], "adamw_step"),
                    f32_ptr(exp_avgs[i], "adamw_step"), f32_ptr(exp_avg_sqs[i], "adamw_step")});
    sizes.push_back(params[i].numel());
  }
  // Bias corrections in double on the host, as PyTorch computes them.
  const double bc1 = 1.0 - std::pow(o.beta1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(o.beta2, static_cast<double>(step));
  const AdamWArgs a{static_cast<float>(1.0 - o.lr * o.weight_decay), static_cast<float>(o.lr / bc1),
                    static_cast<float>(std::sqrt(bc2)),          static_cast<float>(o.eps),
                    static_cast<float>(o.beta1),                 static_cast<float>(o.beta2),
                    static_cast<float>(1.0 - o.beta1),           static_cast<float>(1.0 - o.beta2),
                    static_cast<float>(grad_scale)};
  fused_update<4, AdamWUpdate>(rows, sizes, a, gate, "fused_update_kernel<AdamW>");
}

}  // namespace

// ---------------------------------------------------------------- registration
const kernels::Registrar optimizer_registrar([] {
  auto& t = kernels::table_for<kernels::OptimizerKernels>(DeviceType::CUDA);
  t.sgd_step = sgd_step;
  t.adamw_step = adamw_step;
});

}  // namespace ember::cuda
