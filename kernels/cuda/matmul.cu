/// @file kernels/cuda/matmul.cu @brief Hand-written tiled SGEMM (64x64 tiles, 4x4 register blocking): a comparison point for cuBLAS, reachable through CudaBackendInfo::tiled_gemm.
//
// C[b] = alpha * op(A[b]) @ op(B[b]) + beta * C[b] for row-major operands with leading dimensions
// lda/ldb/ldc and batch strides (0 = the operand is shared by every batch). A block computes a 64x64
// tile of C: per step it stages a 64x16 slice of op(A) and a 16x64 slice of op(B) in shared memory
// (stored k-major, loads coalesced along whichever axis is contiguous in memory), then each of its
// 256 threads accumulates a 4x4 micro-tile (rows ty + 16i, cols tx + 16j) in registers with fmaf.
// beta == 0 never reads C (it may hold garbage, e.g. NaN); beta == 1 accumulates into C (weight-
// gradient GEMMs write straight into .grad).
//
// Registration: the CUDA gemm of both builds is cuBLAS (kernels/cuda/lib/cublas_gemm.cpp; in the emulated
// build it runs on the emulated cuBLAS of kernels/cuda/emulator). This kernel is exposed through
// CudaBackendInfo::tiled_gemm (kernels/cuda/backend_info.h), so the suites can compare it with cuBLAS.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/backend_info.h"
#include "kernels/dispatch.h"
#include "kernels/matmul.h"

namespace ember::kernels::cuda_backend {
namespace {

constexpr int kTileM = 64;
constexpr int kTileN = 64;
constexpr int kTileK = 16;
constexpr int kThreadsX = 16;  // block is 16 x 16 threads
constexpr int kThreadsY = 16;
constexpr int kMicro = 4;  // each thread: 4 x 4 outputs
constexpr int kThreads = kThreadsX * kThreadsY;
constexpr int kPad = 4;  // keeps 16-byte alignment of rows, shifts banks between k-rows

/// One matrix operand as the kernel sees it.
struct GemmOperand {
  const float* data;
  int64_t ld;            ///< row stride (elements) of the stored row-major matrix
  int64_t batch_stride;  ///< 0 = broadcast over the batch
  bool trans;            ///< op(X) = X^T
};

// ---------------------------------------------------------------------------------------- kernel

/// C = alpha * op(A) op(B) + beta * C, C [batch, m, n] with row stride ldc and batch stride m*ldc.
/// Grid (ceil(n/64), ceil(m/64), min(batch, 65535 or the test cap)) with a loop over the batch, blocks of 16x16
/// threads, static shared 2 * 16 * 68 floats (8.5 KiB). Bytes (DRAM, ideal reuse): 4*batch*(m*k + k*n
/// + m*n) (+4*batch*m*n when beta != 0); through shared memory each A/B element is re-read n/64 resp.
/// m/64 times from L2.
__global__ void sgemm_tiled_kernel(GemmOperand a, GemmOperand b, float* c, int64_t ldc, int64_t batch, int m, int n,
                                   int k, float alpha, float beta) {
  EMBER_SHARED(float[kTileK][kTileM + kPad], as);  // as[p][i] = op(A)(row0 + i, k0 + p)
  EMBER_SHARED(float[kTileK][kTileN + kPad], bs);  // bs[p][j] = op(B)(k0 + p, col0 + j)
  const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * kThreadsX + tx;
  const int row0 = blockIdx.y * kTileM, col0 = blockIdx.x * kTileN;
  for (int64_t z = blockIdx.z; z < batch; z += gridDim.z) {
    const float* ap = a.data + z * a.batch_stride;
    const float* bp = b.data + z * b.batch_stride;
    float acc[kMicro][kMicro] = {};
    for (int k0 = 0; k0 < k; k0 += kTileK) {
      for (int e = tid; e < kTileM * kTileK; e += kThreads) {
        // Walk along the axis that is contiguous in memory so a warp's loads coalesce.
        const int i = a.trans ? e % kTileM : e / kTileK, p = a.trans ? e / kTileM : e % kTileK;
        const int gi = row0 + i, gp = k0 + p;
        as[p][i] = (gi < m && gp < k) ? ap[a.trans ? gp * a.ld + gi : gi * a.ld + gp] : 0.0f;
      }
      for (int e = tid; e < kTileK * kTileN; e += kThreads) {
        const int j = b.trans ? e / kTileK : e % kTileN, p = b.trans ? e % kTileK : e / kTileN;
        const int gj = col0 + j, gp = k0 + p;
        bs[p][j] = (gj < n && gp < k) ? bp[b.trans ? gj * b.ld + gp : gp * b.ld + gj] : 0.0f;
      }
      __syncthreads();
      for (int p = 0; p < kTileK; ++p) {
        float av[kMicro], bv[kMicro];
        for (int r = 0; r < kMicro; ++r) av[r] = as[p][ty + r * kThreadsY];
        for (int s = 0; s < kMicro; ++s) bv[s] = bs[p][tx + s * kThreadsX];
        for (int r = 0; r < kMicro; ++r)
          for (int s = 0; s < kMicro; ++s) acc[r][s] = fmaf(av[r], bv[s], acc[r][s]);
      }
      __syncthreads();
    }
    float* cp = c + z * static_cast<int64_t>(m) * ldc;
    for (int r = 0; r < kMicro; ++r) {
      const int gi = row0 + ty + r * kThreadsY;
      for (int s = 0; s < kMicro; ++s) {
        const int gj = col0 + tx + s * kThreadsX;
        if (gi >= m || gj >= n) continue;
        float* out = cp + gi * ldc + gj;
        const float v = __fmul_rn(alpha, acc[r][s]);
        *out = beta == 0.0f ? v : fmaf(beta, *out, v);
      }
    }
  }
}

// -------------------------------------------------------------------------------------- launcher

GemmOperand operand(const Tensor& t, bool trans) {
  return GemmOperand{static_cast<const float*>(t.data_ptr()), t.stride(-2), t.dim() == 3 ? t.stride(0) : 0, trans};
}

void tiled_gemm(const Tensor& a, bool ta, const Tensor& b, bool tb, Tensor& c, double alpha, double beta) {
  EMBER_CHECK(a.dtype() == DType::f32 && b.dtype() == DType::f32 && c.dtype() == DType::f32,
              "gemm: the CUDA backend computes in f32 only, got ", describe(a), ", ", describe(b), ", ", describe(c));
  const int64_t batch = c.dim() == 3 ? c.size(0) : 1;
  const int64_t m = c.size(-2), n = c.size(-1), k = ta ? a.size(-2) : a.size(-1);
  EMBER_CHECK(m <= INT32_MAX && n <= INT32_MAX && k <= INT32_MAX && (m + kTileM - 1) / kTileM <= 65535,
              "gemm: sizes m=", m, " n=", n, " k=", k, " are beyond the tiled kernel's grid");
  const int64_t batch_blocks = ember::cuda::grid_cap(65535u);  // blocks loop over the batch
  const dim3 grid(static_cast<unsigned>((n + kTileN - 1) / kTileN), static_cast<unsigned>((m + kTileM - 1) / kTileM),
                  static_cast<unsigned>(batch < batch_blocks ? batch : batch_blocks));
  ember::cuda::launch(sgemm_tiled_kernel, grid, dim3(kThreadsX, kThreadsY), 0, ember::cuda::stream(), operand(a, ta),
                      operand(b, tb), static_cast<float*>(c.data_ptr()), c.stride(-2), batch, static_cast<int>(m),
                      static_cast<int>(n), static_cast<int>(k), static_cast<float>(alpha), static_cast<float>(beta));
  EMBER_CUDA_CHECK_LAUNCH("sgemm_tiled_kernel");
}

}  // namespace

const Registrar registrar([] { table_for<CudaBackendInfo>(DeviceType::CUDA).tiled_gemm = tiled_gemm; });

}  // namespace ember::kernels::cuda_backend
