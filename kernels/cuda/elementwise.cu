/// @file kernels/cuda/elementwise.cu @brief CUDA elementwise kernels: fill, strided/converting copy, unary (+ backward) and broadcast binary (float4 fast path) kernels templated on the op traits of kernels/op_traits.h.
//
// Every kernel is a grid-stride loop; the grid is capped at a few blocks per SM (blocks_for). Strided
// operands travel by value as StridedDesc (kernels/strided.h); broadcast dims have stride 0. The CUDA
// backend computes in f32 only (f64 is an error naming the dtype); copy also converts to/from i64.
#include <cmath>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/index_math.h"
#include "kernels/dispatch.h"
#include "kernels/elementwise.h"
#include "kernels/op_traits.h"

namespace ember::kernels::cuda_backend {
namespace {

constexpr unsigned kThreads = 256;

/// The op traits' math on the device (kernels/op_traits.h): CUDA's f32 functions, and __fmul_rn where
/// a product must round on its own (no FMA), as on the CPU.
struct DeviceMath {
  __device__ static float exp(float x) { return expf(x); }
  __device__ static float log(float x) { return logf(x); }
  __device__ static float tanh(float x) { return tanhf(x); }
  __device__ static float pow(float x, float y) { return powf(x, y); }
  __device__ static float erf(float x) { return erff(x); }
  __device__ static float log1p(float x) { return log1pf(x); }
  __device__ static float mul_rn(float a, float b) { return __fmul_rn(a, b); }
};

__device__ inline int64_t global_thread() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ inline int64_t grid_threads() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }
template <class Index>
__device__ inline Index first_index() {
  return static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x;
}
template <class Index>
__device__ inline Index index_step() {
  return static_cast<Index>(gridDim.x) * blockDim.x;
}
template <class Index>
using Strided = ember::cuda::StridedIndex<Index>;

// ---------------------------------------------------------------------------------------- kernels

/// out[i] = value. Grid-stride, 1-D blocks of kThreads. Bytes: n * sizeof(T) written.
template <class T>
__global__ void fill_kernel(T* out, T value, int64_t n) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) out[i] = value;
}

/// dst[dd(i)] = D(src[sd(i)]), any strides on both sides (contiguous when the flag says so).
/// Grid-stride, 1-D blocks of kThreads; Index uint32_t (strided offsets by fast division) when the
/// loop fits int32, else int64_t (every strided kernel below likewise). Bytes: n * (sizeof(S) + sizeof(D)).
template <class S, class D, class Index>
__global__ void copy_kernel(const S* src, Strided<Index> sd, bool src_contig, D* dst, Strided<Index> dd,
                            bool dst_contig, Index n) {
  for (Index i = first_index<Index>(); i < n; i += index_step<Index>()) {
    const int64_t si = src_contig ? i : sd.offset_of(i);
    const int64_t di = dst_contig ? i : dd.offset_of(i);
    dst[di] = static_cast<D>(src[si]);
  }
}

/// out[i] = Op::forward(x[xd(i)], s), out contiguous; one instantiation per op of UnaryOpList.
/// Grid-stride, 1-D blocks of kThreads. Bytes: 8n.
template <class Op, class Index>
__global__ void unary_kernel(const float* x, Strided<Index> xd, bool x_contig, float* out, float s, Index n) {
  for (Index i = first_index<Index>(); i < n; i += index_step<Index>())
    out[i] = Op::template forward<DeviceMath>(x[x_contig ? i : xd.offset_of(i)], s);
}

/// gx[i] = gy[gd(i)] * Op::grad(v[vd(i)], s) where v is x or y as Op::saves says (not read when the op
/// saves nothing). Grid-stride, 1-D blocks of kThreads. Bytes: 12n (8n when the op saves nothing).
template <class Op, class Index>
__global__ void unary_backward_kernel(const float* v, Strided<Index> vd, bool v_contig, const float* gy,
                                      Strided<Index> gd, bool g_contig, float* gx, float s, Index n) {
  for (Index i = first_index<Index>(); i < n; i += index_step<Index>()) {
    const float vv = Op::saves == Saves::Nothing ? 0.0f : v[v_contig ? i : vd.offset_of(i)];
    const float g = gy[g_contig ? i : gd.offset_of(i)];
    gx[i] = g * Op::template grad<DeviceMath>(vv, s);
  }
}

/// out = a op b, all contiguous and 16-byte aligned: one float4 per thread and step over n/4 vectors,
/// then the n % 4 tail by the first threads; one instantiation per op of BinaryOpList. Grid-stride, 1-D
/// blocks of kThreads. Bytes: 12n.
template <class Op>
__global__ void binary_vec4_kernel(const float* a, const float* b, float* out, int64_t n) {
  const int64_t n4 = n / 4;
  const float4* a4 = reinterpret_cast<const float4*>(a);
  const float4* b4 = reinterpret_cast<const float4*>(b);
  float4* o4 = reinterpret_cast<float4*>(out);
  for (int64_t i = global_thread(); i < n4; i += grid_threads()) {
    const float4 x = a4[i], y = b4[i];
    o4[i] = make_float4(Op::forward(x.x, y.x), Op::forward(x.y, y.y), Op::forward(x.z, y.z), Op::forward(x.w, y.w));
  }
  for (int64_t i = n4 * 4 + global_thread(); i < n; i += grid_threads()) out[i] = Op::forward(a[i], b[i]);
}

/// out[i] = a[ad(i)] op b[bd(i)]: the general path (broadcast = stride 0, or misaligned contiguous
/// operands with both flags set). Grid-stride, 1-D blocks of kThreads. Bytes: 12n (less when broadcast
/// operands hit in cache).
template <class Op, class Index>
__global__ void binary_strided_kernel(const float* a, Strided<Index> ad, bool a_contig, const float* b,
                                      Strided<Index> bd, bool b_contig, float* out, Index n) {
  for (Index i = first_index<Index>(); i < n; i += index_step<Index>())
    out[i] = Op::forward(a[a_contig ? i : ad.offset_of(i)], b[b_contig ? i : bd.offset_of(i)]);
}

// -------------------------------------------------------------------------------------- launchers

unsigned blocks_for(int64_t n) {
  return ember::cuda::grid_for(n, kThreads);
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

/// The strided kernels' 32-bit path: the grid-stride loop over n elements never leaves int32.
bool fits32(int64_t n) { return ember::cuda::fits_int32_loop(n, static_cast<int64_t>(blocks_for(n)) * kThreads); }

using ember::cuda::check_f32;

void fill(Tensor& out, double value) {
  const int64_t n = out.numel();
  if (out.dtype() == DType::i64) {
    ember::cuda::launch(fill_kernel<int64_t>, blocks_for(n), kThreads, 0, ember::cuda::stream(), data_as<int64_t>(out),
                        static_cast<int64_t>(value), n);
  } else {
    check_f32("fill", out);
    ember::cuda::launch(fill_kernel<float>, blocks_for(n), kThreads, 0, ember::cuda::stream(), data_as<float>(out),
                        static_cast<float>(value), n);
  }
  EMBER_CUDA_CHECK_LAUNCH("fill_kernel");
}

template <class S, class D>
void launch_copy(const Tensor& src, Tensor& dst) {
  const int64_t n = dst.numel();
  ember::cuda::with_index_type(fits32(n), [&](auto index) {
    using Index = decltype(index);
    ember::cuda::launch(copy_kernel<S, D, Index>, blocks_for(n), kThreads, 0, ember::cuda::stream(),
                        data_as<const S>(src), Strided<Index>(strided_desc(src)), src.is_contiguous(), data_as<D>(dst),
                        Strided<Index>(strided_desc(dst)), dst.is_contiguous(), static_cast<Index>(n));
    EMBER_CUDA_CHECK_LAUNCH("copy_kernel");
  });
}

void copy(const Tensor& src, Tensor& dst) {
  EMBER_CHECK(src.dtype() != DType::f64 && dst.dtype() != DType::f64,
              "copy: the CUDA backend has no f64 (f32 and i64 only), got source ", describe(src), " and destination ",
              describe(dst));
  const bool sf = src.dtype() == DType::f32, df = dst.dtype() == DType::f32;
  if (sf && df) launch_copy<float, float>(src, dst);
  else if (sf) launch_copy<float, int64_t>(src, dst);
  else if (df) launch_copy<int64_t, float>(src, dst);
  else launch_copy<int64_t, int64_t>(src, dst);
}

void unary(UnaryOp op, const Tensor& x, Tensor& out, double scalar) {
  check_f32(unary_op_name(op), x);
  const int64_t n = out.numel();
  with_op(UnaryOpList{}, static_cast<int>(op), [&](auto op_tag) {
    using Op = typename decltype(op_tag)::type;
    ember::cuda::with_index_type(fits32(n), [&](auto index) {
      using Index = decltype(index);
      ember::cuda::launch(unary_kernel<Op, Index>, blocks_for(n), kThreads, 0, ember::cuda::stream(),
                          data_as<const float>(x), Strided<Index>(strided_desc(x)), x.is_contiguous(),
                          data_as<float>(out), static_cast<float>(scalar), static_cast<Index>(n));
      EMBER_CUDA_CHECK_LAUNCH("unary_kernel");
    });
  });
}

void unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx, double scalar) {
  check_f32(unary_op_name(op), gy);
  const int64_t n = gx.numel();
  with_op(UnaryOpList{}, static_cast<int>(op), [&](auto op_tag) {
    using Op = typename decltype(op_tag)::type;
    // v: what the gradient reads (gy, not read, when the op saves nothing; the entry point checked its shape).
    const Tensor& v = Op::saves == Saves::Output ? y : (Op::saves == Saves::Input ? x : gy);
    check_f32(unary_op_name(op), v);
    ember::cuda::with_index_type(fits32(n), [&](auto index) {
      using Index = decltype(index);
      ember::cuda::launch(unary_backward_kernel<Op, Index>, blocks_for(n), kThreads, 0, ember::cuda::stream(),
                          data_as<const float>(v), Strided<Index>(strided_desc(v)), v.is_contiguous(),
                          data_as<const float>(gy), Strided<Index>(strided_desc(gy)), gy.is_contiguous(),
                          data_as<float>(gx), static_cast<float>(scalar), static_cast<Index>(n));
      EMBER_CUDA_CHECK_LAUNCH("unary_backward_kernel");
    });
  });
}

void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  check_f32(binary_op_name(op), a);
  const int64_t n = out.numel();
  const bool contiguous = a.is_contiguous() && b.is_contiguous();
  with_op(BinaryOpList{}, static_cast<int>(op), [&](auto op_tag) {
    using Op = typename decltype(op_tag)::type;
    if (contiguous && aligned16(a.data_ptr()) && aligned16(b.data_ptr()) && aligned16(out.data_ptr())) {
      ember::cuda::launch(binary_vec4_kernel<Op>, blocks_for((n + 3) / 4), kThreads, 0, ember::cuda::stream(),
                          data_as<const float>(a), data_as<const float>(b), data_as<float>(out), n);
      EMBER_CUDA_CHECK_LAUNCH("binary_vec4_kernel");
      return;
    }
    ember::cuda::with_index_type(fits32(n), [&](auto index) {
      using Index = decltype(index);
      ember::cuda::launch(binary_strided_kernel<Op, Index>, blocks_for(n), kThreads, 0, ember::cuda::stream(),
                          data_as<const float>(a), Strided<Index>(strided_desc(a)), a.is_contiguous(),
                          data_as<const float>(b), Strided<Index>(strided_desc(b)), b.is_contiguous(),
                          data_as<float>(out), static_cast<Index>(n));
      EMBER_CUDA_CHECK_LAUNCH("binary_strided_kernel");
    });
  });
}

}  // namespace

const Registrar registrar([] {
  auto& t = table_for<ElementwiseKernels>(DeviceType::CUDA);
  t.fill = fill;
  t.copy = copy;
  t.unary = unary;
  t.unary_backward = unary_backward;
  t.binary = binary;
});

}  // namespace ember::kernels::cuda_backend
