/// @file kernels/cuda/elementwise.cu @brief CUDA elementwise kernels: fill, strided/converting copy, unary (+ backward), broadcast binary with a float4 fast path.
//
// Every kernel is a grid-stride loop; the grid is capped at a few blocks per SM (blocks_for). Strided
// operands travel by value as StridedDesc (kernels/strided.h); broadcast dims have stride 0. The CUDA
// backend computes in f32 only (f64 is an error naming the dtype); copy also converts to/from i64.
#include <cmath>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/index_math.h"
#include "kernels/dispatch.h"
#include "kernels/elementwise.h"

namespace ember::kernels::cuda_backend {
namespace {

constexpr unsigned kThreads = 256;

__device__ inline float unary_fn(UnaryOp op, float x, float s) {
  switch (op) {
    case UnaryOp::Neg: return -x;
    case UnaryOp::Exp: return expf(x);
    case UnaryOp::Log: return logf(x);
    case UnaryOp::Relu: return x > 0.0f ? x : 0.0f;
    case UnaryOp::Sigmoid: return 1.0f / (1.0f + expf(-x));
    case UnaryOp::Tanh: return tanhf(x);
    case UnaryOp::Pow: return powf(x, s);
    case UnaryOp::MulScalar: return x * s;
    case UnaryOp::AddScalar: return x + s;
  }
  return x;
}

/// d op / dx from the input x or the output y (the same choice as the CPU backend).
__device__ inline float unary_grad(UnaryOp op, float x, float y, float s) {
  switch (op) {
    case UnaryOp::Neg: return -1.0f;
    case UnaryOp::Exp: return y;
    case UnaryOp::Log: return 1.0f / x;
    case UnaryOp::Relu: return x > 0.0f ? 1.0f : 0.0f;
    case UnaryOp::Sigmoid: return y * (1.0f - y);
    case UnaryOp::Tanh: return 1.0f - __fmul_rn(y, y);  // no FMA: rounds as the CPU
    case UnaryOp::Pow: return s == 0.0f ? 0.0f : s * powf(x, s - 1.0f);
    case UnaryOp::MulScalar: return s;
    case UnaryOp::AddScalar: return 1.0f;
  }
  return 0.0f;
}

__device__ inline float binary_fn(BinaryOp op, float a, float b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    case BinaryOp::Div: return a / b;
  }
  return a;
}

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

/// out[i] = op(x[xd(i)]; s), out contiguous. Grid-stride, 1-D blocks of kThreads. Bytes: 8n.
template <class Index>
__global__ void unary_kernel(UnaryOp op, const float* x, Strided<Index> xd, bool x_contig, float* out, float s,
                             Index n) {
  for (Index i = first_index<Index>(); i < n; i += index_step<Index>())
    out[i] = unary_fn(op, x[x_contig ? i : xd.offset_of(i)], s);
}

/// gx[i] = gy[gd(i)] * op'(v[vd(i)]) where v is x or y (see unary_grad). Grid-stride, 1-D blocks of
/// kThreads. Bytes: 12n (8n when the op reads neither x nor y).
template <class Index>
__global__ void unary_backward_kernel(UnaryOp op, bool uses_y, const float* v, Strided<Index> vd, bool v_contig,
                                      const float* gy, Strided<Index> gd, bool g_contig, float* gx, float s, Index n) {
  for (Index i = first_index<Index>(); i < n; i += index_step<Index>()) {
    const float vv = v ? v[v_contig ? i : vd.offset_of(i)] : 0.0f;
    const float g = gy[g_contig ? i : gd.offset_of(i)];
    gx[i] = g * unary_grad(op, uses_y ? 0.0f : vv, uses_y ? vv : 0.0f, s);
  }
}

/// out = a op b, all contiguous and 16-byte aligned: one float4 per thread and step over n/4 vectors,
/// then the n % 4 tail by the first threads. Grid-stride, 1-D blocks of kThreads. Bytes: 12n.
__global__ void binary_vec4_kernel(BinaryOp op, const float* a, const float* b, float* out, int64_t n) {
  const int64_t n4 = n / 4;
  const float4* a4 = reinterpret_cast<const float4*>(a);
  const float4* b4 = reinterpret_cast<const float4*>(b);
  float4* o4 = reinterpret_cast<float4*>(out);
  for (int64_t i = global_thread(); i < n4; i += grid_threads()) {
    const float4 x = a4[i], y = b4[i];
    o4[i] = make_float4(binary_fn(op, x.x, y.x), binary_fn(op, x.y, y.y), binary_fn(op, x.z, y.z),
                        binary_fn(op, x.w, y.w));
  }
  for (int64_t i = n4 * 4 + global_thread(); i < n; i += grid_threads()) out[i] = binary_fn(op, a[i], b[i]);
}

/// out[i] = a[ad(i)] op b[bd(i)]: the general path (broadcast = stride 0, or misaligned contiguous
/// operands with both flags set). Grid-stride, 1-D blocks of kThreads. Bytes: 12n (less when broadcast
/// operands hit in cache).
template <class Index>
__global__ void binary_strided_kernel(BinaryOp op, const float* a, Strided<Index> ad, bool a_contig, const float* b,
                                      Strided<Index> bd, bool b_contig, float* out, Index n) {
  for (Index i = first_index<Index>(); i < n; i += index_step<Index>())
    out[i] = binary_fn(op, a[a_contig ? i : ad.offset_of(i)], b[b_contig ? i : bd.offset_of(i)]);
}

// -------------------------------------------------------------------------------------- launchers

unsigned blocks_for(int64_t n) {
  return ember::cuda::grid_for(n, kThreads);
}

template <class T>
T* ptr(const Tensor& t) {
  return static_cast<T*>(t.data_ptr());
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

/// The strided kernels' 32-bit path: the grid-stride loop over n elements never leaves int32.
bool fits32(int64_t n) { return ember::cuda::fits_int32_loop(n, static_cast<int64_t>(blocks_for(n)) * kThreads); }

void check_f32(const char* op, const Tensor& t) {
  EMBER_CHECK(t.dtype() == DType::f32, op, ": the CUDA backend computes in f32 only, got ", describe(t));
}

void fill(Tensor& out, double value) {
  const int64_t n = out.numel();
  if (out.dtype() == DType::i64) {
    ember::cuda::launch(fill_kernel<int64_t>, blocks_for(n), kThreads, 0, ember::cuda::stream(), ptr<int64_t>(out),
                        static_cast<int64_t>(value), n);
  } else {
    check_f32("fill", out);
    ember::cuda::launch(fill_kernel<float>, blocks_for(n), kThreads, 0, ember::cuda::stream(), ptr<float>(out),
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
                        ptr<const S>(src), Strided<Index>(strided_desc(src)), src.is_contiguous(), ptr<D>(dst),
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
  ember::cuda::with_index_type(fits32(n), [&](auto index) {
    using Index = decltype(index);
    ember::cuda::launch(unary_kernel<Index>, blocks_for(n), kThreads, 0, ember::cuda::stream(), op,
                        ptr<const float>(x), Strided<Index>(strided_desc(x)), x.is_contiguous(), ptr<float>(out),
                        static_cast<float>(scalar), static_cast<Index>(n));
    EMBER_CUDA_CHECK_LAUNCH("unary_kernel");
  });
}

void unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx, double scalar) {
  check_f32(unary_op_name(op), gy);
  const bool uses_y = op == UnaryOp::Exp || op == UnaryOp::Sigmoid || op == UnaryOp::Tanh;
  const bool uses_x = op == UnaryOp::Log || op == UnaryOp::Relu || op == UnaryOp::Pow;
  const Tensor& v = uses_y ? y : (uses_x ? x : gy);
  check_f32(unary_op_name(op), v);
  EMBER_CHECK(v.shape() == gy.shape(), unary_op_name(op), " backward: saved ", describe(v),
              " does not match the gradient ", describe(gy));
  const int64_t n = gx.numel();
  ember::cuda::with_index_type(fits32(n), [&](auto index) {
    using Index = decltype(index);
    ember::cuda::launch(unary_backward_kernel<Index>, blocks_for(n), kThreads, 0, ember::cuda::stream(), op, uses_y,
                        (uses_x || uses_y) ? ptr<const float>(v) : static_cast<const float*>(nullptr),
                        Strided<Index>(strided_desc(v)), v.is_contiguous(), ptr<const float>(gy),
                        Strided<Index>(strided_desc(gy)), gy.is_contiguous(), ptr<float>(gx),
                        static_cast<float>(scalar), static_cast<Index>(n));
    EMBER_CUDA_CHECK_LAUNCH("unary_backward_kernel");
  });
}

void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  check_f32(binary_op_name(op), a);
  const int64_t n = out.numel();
  const bool contiguous = a.is_contiguous() && b.is_contiguous();
  if (contiguous && aligned16(a.data_ptr()) && aligned16(b.data_ptr()) && aligned16(out.data_ptr())) {
    ember::cuda::launch(binary_vec4_kernel, blocks_for((n + 3) / 4), kThreads, 0, ember::cuda::stream(), op,
                        ptr<const float>(a), ptr<const float>(b), ptr<float>(out), n);
    EMBER_CUDA_CHECK_LAUNCH("binary_vec4_kernel");
    return;
  }
  ember::cuda::with_index_type(fits32(n), [&](auto index) {
    using Index = decltype(index);
    ember::cuda::launch(binary_strided_kernel<Index>, blocks_for(n), kThreads, 0, ember::cuda::stream(), op,
                        ptr<const float>(a), Strided<Index>(strided_desc(a)), a.is_contiguous(), ptr<const float>(b),
                        Strided<Index>(strided_desc(b)), b.is_contiguous(), ptr<float>(out), static_cast<Index>(n));
    EMBER_CUDA_CHECK_LAUNCH("binary_strided_kernel");
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
