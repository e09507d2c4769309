/// @file benchmarks/gpu/accumulate.cpp @brief GPU accumulate (unfused, scalar, vectorized, multi-tensor) and scale-with-norm against cuBLAS axpy / scal + nrm2.
#include <span>

#include "benchmarks/bench_util.h"
#include "benchmarks/gpu/baselines.h"
#include "benchmarks/gpu/gpu_bench.h"
#include "benchmarks/table_reporter.h"
#include "kernels/accumulate.h"
#include "kernels/elementwise.h"

namespace ember::bench::gpu {
namespace {

constexpr double kAlpha = 0.25;

float* fptr(Tensor& t) { return static_cast<float*>(t.data_ptr()); }
const float* fptr(const Tensor& t) { return static_cast<const float*>(t.data_ptr()); }

/// `count` pairs (grad, g) of n floats; `misaligned`: views starting 1 element into n + 1, so no
/// pointer is 16-byte aligned and accumulate_kernel takes its scalar loop.
struct Pairs {
  std::vector<Tensor> grad, g;
  Pairs(int64_t n, int count, bool misaligned = false) {
    for (int i = 0; i < count; ++i) {
      if (misaligned) {
        grad.push_back(full({n + 1}, 0.01, on_gpu()).slice(0, 1, n + 1));
        g.push_back(full({n + 1}, 1.0, on_gpu()).slice(0, 1, n + 1));
      } else {
        grad.push_back(full({n}, 0.01, on_gpu()));
        g.push_back(full({n}, 1.0, on_gpu()));
      }
    }
  }
};

enum class Variant { UnfusedAlloc, Unfused, Scalar, Vectorized, CublasAxpy };

/// grad += alpha * g over n floats: the "must move" is 12 bytes per element for every variant (the
/// unfused ones move more; their rate reads as an effective bandwidth).
void single(benchmark::State& s, int64_t n, Variant v) {
  const int r = rotations(12.0 * double(n));
  Pairs p(n, r, v == Variant::Scalar);
  Tensor tmp = v == Variant::Unfused ? empty({n}, on_gpu()) : Tensor();
  const float alpha = float(kAlpha);
  time_calls(s, [&](int64_t k) {
    Tensor& grad = p.grad[size_t(k % r)];
    const Tensor& g = p.g[size_t(k % r)];
    switch (v) {
      case Variant::UnfusedAlloc: {
        Tensor t = empty({n}, on_gpu());
        kernels::unary(kernels::unary_op_v<kernels::op::MulScalar>, g, t, kAlpha);
        kernels::binary(kernels::binary_op_v<kernels::op::Add>, grad, t, grad);
        break;
      }
      case Variant::Unfused:
        kernels::unary(kernels::unary_op_v<kernels::op::MulScalar>, g, tmp, kAlpha);
        kernels::binary(kernels::binary_op_v<kernels::op::Add>, grad, tmp, grad);
        break;
      case Variant::Scalar:
      case Variant::Vectorized:
        kernels::accumulate(grad, g, kAlpha);
        break;
      case Variant::CublasAxpy:
        EMBER_BENCH_CUBLAS(cublasSaxpy(cublas(), int(n), &alpha, fptr(g), 1, fptr(grad), 1));
        break;
    }
  });
  set_bandwidth(s, 12.0 * double(n), kPeakCopy);
}

enum class ListVariant { PerTensor, MultiTensor, CublasAxpy };

void list(benchmark::State& s, ParamList l, ListVariant v) {
  const int r = rotations(12.0 * double(l.numel()));
  auto grads = make_sets(l, r, 0.01), gs = make_sets(l, r, 1.0);
  const float alpha = float(kAlpha);
  time_calls(s, [&](int64_t k) {
    std::vector<Tensor>& grad = grads[size_t(k % r)];
    const std::vector<Tensor>& g = gs[size_t(k % r)];
    switch (v) {
      case ListVariant::PerTensor:
        for (size_t i = 0; i < grad.size(); ++i) kernels::accumulate(grad[i], g[i], kAlpha);
        break;
      case ListVariant::MultiTensor:
        kernels::accumulate_many(grad, std::span<const Tensor>(g), kAlpha);
        break;
      case ListVariant::CublasAxpy:
        for (size_t i = 0; i < grad.size(); ++i)
          EMBER_BENCH_CUBLAS(cublasSaxpy(cublas(), int(grad[i].numel()), &alpha, fptr(g[i]), 1, fptr(grad[i]), 1));
        break;
    }
  });
  set_bandwidth(s, 12.0 * double(l.numel()), kPeakCopy);
}

/// kernels::scale_many (scale + sum of squares + non-finite flag, one pass, 16-byte result copied back
/// to the host) vs cuBLAS per tensor: cublasSscal then cublasSnrm2 into device memory (two passes, no
/// non-finite check, no copy back). 8 bytes per element must move.
void scale(benchmark::State& s, ParamList l, bool use_cublas) {
  const int r = rotations(8.0 * double(l.numel()));
  auto sets = make_sets(l, r, 0.01);
  cublasHandle_t h = nullptr;
  Tensor scalars = full({2}, 1.0, on_gpu());  // [factor, 1 / factor] on the device
  Tensor norms = empty({int64_t(l.shapes.size())}, on_gpu());
  if (use_cublas) {
    EMBER_BENCH_CUBLAS(cublasCreate(&h));
    EMBER_BENCH_CUBLAS(cublasSetStream(h, ember::cuda::stream()));
    EMBER_BENCH_CUBLAS(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_DEVICE));
    scalars = from_vector(std::vector<float>{2.0f, 0.5f}, {2}, on_gpu());
  }
  try {
    time_calls(s, [&](int64_t k) {
      std::vector<Tensor>& ts = sets[size_t(k % r)];
      const bool up = (k / r) % 2 == 0;  // each set alternately x2 and x0.5: the values stay put
      if (!use_cublas) {
        benchmark::DoNotOptimize(kernels::scale_many(ts, up ? 2.0 : 0.5));
        return;
      }
      const float* factor = fptr(scalars) + (up ? 0 : 1);
      for (size_t i = 0; i < ts.size(); ++i) {
        const int n = int(ts[i].numel());
        EMBER_BENCH_CUBLAS(cublasSscal(h, n, factor, fptr(ts[i]), 1));
        EMBER_BENCH_CUBLAS(cublasSnrm2(h, n, fptr(ts[i]), 1, fptr(norms) + i));
      }
    });
  } catch (...) {
    if (h) cublasDestroy(h);
    throw;
  }
  if (h) cublasDestroy(h);
  set_bandwidth(s, 8.0 * double(l.numel()), kPeakCopy);
}

}  // namespace

void register_accumulate() {
  const std::pair<const char*, Variant> variants[] = {{"unfused_alloc", Variant::UnfusedAlloc},
                                                      {"unfused", Variant::Unfused},
                                                      {"scalar", Variant::Scalar},
                                                      {"vectorized", Variant::Vectorized},
                                                      {"cublas_axpy", Variant::CublasAxpy}};
  for (int64_t n : {int64_t{1} << 20, int64_t{1} << 26})
    for (const auto& [name, v] : variants) add_gpu(bench_name("accumulate/", name, "/", n), single, n, v);
  const std::pair<const char*, ListVariant> list_variants[] = {{"per_tensor", ListVariant::PerTensor},
                                                               {"multi_tensor", ListVariant::MultiTensor},
                                                               {"cublas_axpy", ListVariant::CublasAxpy}};
  for (const ParamList& l : all_param_lists())
    for (const auto& [name, v] : list_variants) add_gpu(bench_name("accumulate_list/", l.name, "/", name), list, l, v);
  for (const ParamList& l : all_param_lists()) {
    add_gpu(bench_name("scale_norm/", l.name, "/cublas_scal_nrm2"), scale, l, true);
    add_gpu(bench_name("scale_norm/", l.name, "/fused"), scale, l, false);
  }
}

}  // namespace ember::bench::gpu
