/// @file tests/harness/backends.cpp @brief Harness implementation (device list, allclose, finite differences).
#include "tests/harness/backends.h"

#include <cmath>
#include <sstream>

#include "kernels/transfer.h"

namespace ember::test {

bool has_cuda() { return kernels::device_count(DeviceType::CUDA) > 0; }

std::vector<Device> devices() {
  std::vector<Device> d{Device::cpu()};
  if (has_cuda()) d.push_back(Device::cuda(0));
  return d;
}

bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol, std::string* why) {
  if (a.shape() != b.shape()) {
    if (why) *why = "shape " + shape_str(a.shape()) + " vs " + shape_str(b.shape());
    return false;
  }
  const auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  for (size_t i = 0; i < va.size(); ++i) {
    const bool both_nan = std::isnan(va[i]) && std::isnan(vb[i]);
    if (both_nan || std::abs(va[i] - vb[i]) <= atol + rtol * std::abs(vb[i])) continue;
    if (why) {
      std::ostringstream os;
      os << "index " << i << ": " << va[i] << " vs " << vb[i] << " (diff " << std::abs(va[i] - vb[i]) << ")";
      *why = os.str();
    }
    return false;
  }
  return true;
}

Tensor random_input(const Shape& shape, uint64_t seed, double lo, double hi, const TensorOptions& opts) {
  Generator g(seed);
  Tensor t = empty(shape, TensorOptions{opts.dtype, Device::cpu()});
  uniform_(t, lo, hi, &g);
  if (!opts.device.is_cpu()) t = t.to(opts.device);
  if (opts.requires_grad) t.set_requires_grad(true);
  return t;
}

double gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f, const std::vector<Tensor>& inputs,
                 double eps) {
  std::vector<Tensor> xs;
  for (const Tensor& x : inputs) {
    Tensor c = x.detach().clone();
    c.set_requires_grad(true);
    xs.push_back(c);
  }
  Tensor y = f(xs);
  y.backward();
  double worst = 0.0;
  for (Tensor& x : xs) {
    const auto analytic = x.grad().to_vector<double>();
    double* p = x.data<double>();  // contiguous f64 CPU clone
    for (int64_t i = 0; i < x.numel(); ++i) {
      const double orig = p[i];
      double fp, fm;
      {
        NoGradGuard ng;
        p[i] = orig + eps;
        fp = f(xs).item();
        p[i] = orig - eps;
        fm = f(xs).item();
        p[i] = orig;
      }
      const double numeric = (fp - fm) / (2 * eps);
      const double err = std::abs(numeric - analytic[static_cast<size_t>(i)]) /
                         std::max(1.0, std::abs(numeric) + std::abs(analytic[static_cast<size_t>(i)]));
      worst = std::max(worst, err);
    }
  }
  return worst;
}

}  // namespace ember::test
