/// @file tests/harness/op_cases.cpp @brief The op-case table: every differentiable core op over broadcast pairs, odd sizes, 0-dim and non-contiguous inputs, each with a naive reference.
#include "tests/harness/op_cases.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <sstream>

#include "kernels/op_traits.h"
#include "ops/functional.h"
#include "ops/functional_embedding.h"
#include "ops/functional_norm.h"
#include "tests/harness/backends.h"
#include "tests/harness/naive_attention.h"

namespace ember::test {

namespace {
constexpr double kEps32 = 1.1920928955078125e-7;  // 2^-23
}  // namespace

// The inputs are drawn in float, so f32 and f64 runs start from identical values and the only error
// of an f32 elementwise result is the rounding of the op itself: 0.5 ulp for + - * /, <= 4 ulp for
// exp/log/tanh/pow in libm or the CUDA intrinsics, i.e. <= 4.8e-7 relative. rtol 1e-5 leaves a 20x
// margin. The absolute floor covers cancellation (a - b with a ~ b): |err| <= eps32 * (|a| + |b|)
// <= 2.4e-7 for the O(1) operands used here, and 1e-6 leaves a 4x margin. gelu's 1 + erf(x/sqrt2)
// (and 1 + tanh(u) of its tanh form) cancels for x < 0: erf's <= 1 ulp near -1 (6e-8) times 0.5 |x|
// <= 2.5 on [-5, 5] is <= 1.5e-7 absolute, also inside the floor (silu and softplus do not cancel).
Tolerance elementwise_tolerance() { return {1e-5, 1e-6}; }

// A sum of k O(1) terms rounded in f32 (a CUDA tree or sequential loop; the CPU accumulates in double)
// has a random-walk error of ~sqrt(k) * eps32 * rms(term) absolute, or ~sqrt(k) * eps32 relative to a
// same-sign total; the worst-case bounds are k * eps32 (sequential) and log2(k) * eps32 (pairwise).
// We allow 2 sqrt(k) eps32 relative (at least the elementwise 1e-5) and 8 sqrt(k) eps32 absolute.
Tolerance sum_tolerance(int64_t k) {
  const double r = std::sqrt(static_cast<double>(std::max<int64_t>(k, 1)));
  return {std::max(1e-5, 2.0 * r * kEps32), std::max(1e-6, 8.0 * r * kEps32)};
}

namespace {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;
using Naive = std::function<NdArray(const std::vector<NdArray>&)>;

/// Concatenates streamable values (avoids GCC 12's -Wrestrict false positive on string operator+).
template <class... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

// ---------------------------------------------------------------- input layouts
InputSpec in(Shape s, double lo = -1.0, double hi = 1.0) { return InputSpec{std::move(s), lo, hi, "", nullptr}; }

/// A logical `s` (>= 2-D) that is the transpose of a contiguous base: unit stride on dim -2.
InputSpec transposed(Shape s, double lo = -1.0, double hi = 1.0) {
  Shape base = s;
  std::swap(base[base.size() - 1], base[base.size() - 2]);
  return InputSpec{base, lo, hi, str_cat("T", shape_str(s)), [](const Tensor& t) { return t.transpose(-1, -2); }};
}

/// A logical `s` whose last dim is every other element (offset 1, stride 2) of a base of 2n+1.
InputSpec strided(Shape s, double lo = -1.0, double hi = 1.0) {
  Shape base = s;
  const int64_t n = s.back();
  base.back() = 2 * n + 1;
  return InputSpec{base, lo, hi, str_cat("S", shape_str(s)),
                   [n](const Tensor& t) { return t.slice(-1, 1, 2 * n + 1, 2); }};
}

/// `base` (with size-1 dims) expanded to `to` (stride 0 on the broadcast dims).
InputSpec expanded(Shape base, Shape to, double lo = -1.0, double hi = 1.0) {
  const std::string name = str_cat("E", shape_str(base), "->", shape_str(to));
  return InputSpec{std::move(base), lo, hi, name, [to](const Tensor& t) { return t.expand(to); }};
}

/// `base` permuted by `perm`.
InputSpec permuted(Shape base, std::vector<int64_t> perm, double lo = -1.0, double hi = 1.0) {
  Shape s;
  for (int64_t p : perm) s.push_back(base[static_cast<size_t>(p)]);
  return InputSpec{std::move(base), lo, hi, str_cat("P", shape_str(s)), [perm](const Tensor& t) { return t.permute(perm); }};
}

std::string spec_name(const InputSpec& s) { return s.layout_name.empty() ? shape_str(s.shape) : s.layout_name; }

class Table {
 public:
  void add(const std::string& op, std::vector<InputSpec> ins, Fn fn, Naive naive, Tolerance tol) {
    std::ostringstream name;
    name << op << "(";
    int64_t total = 0;
    for (size_t i = 0; i < ins.size(); ++i) {
      name << (i ? ", " : "") << spec_name(ins[i]);
      total += shape_numel(ins[i].shape);
    }
    name << ")";
    // Finite differences cost two forwards per input element: only for small inputs.
    const bool small = total <= 1200;
    cases_.push_back(OpCase{name.str(), std::move(ins), std::move(fn), std::move(naive), tol, small});
  }
  std::vector<OpCase> take() { return std::move(cases_); }

 private:
  std::vector<OpCase> cases_;
};

// ---------------------------------------------------------------- elementwise
struct BinaryDef {
  const char* name;
  Tensor (*op)(const Tensor&, const Tensor&);
  double (*ref)(double, double);
  double b_lo = -1.0, b_hi = 1.0;  ///< range of the second operand
};

void add_binary(Table& t) {
  const BinaryDef defs[] = {
      {"add", [](const Tensor& a, const Tensor& b) { return add(a, b); }, [](double a, double b) { return a + b; }},
      {"sub", [](const Tensor& a, const Tensor& b) { return sub(a, b); }, [](double a, double b) { return a - b; }},
      {"mul", [](const Tensor& a, const Tensor& b) { return mul(a, b); }, [](double a, double b) { return a * b; }},
      {"div", [](const Tensor& a, const Tensor& b) { return div(a, b); }, [](double a, double b) { return a / b; },
       0.5, 1.5},  // denominators in [0.5, 1.5]: 1/b and a/b^2 stay O(1) and well conditioned
  };
  struct Pair {
    InputSpec a, b;
    int64_t k;  // longest sum in the backward (broadcast factor)
  };
  for (const BinaryDef& d : defs) {
    const double blo = d.b_lo, bhi = d.b_hi;
    const std::vector<Pair> pairs = {
        {in({1}), in({1}, blo, bhi), 1},
        {in({31}), in({31}, blo, bhi), 1},
        {in({33}), in({1}, blo, bhi), 33},
        {in({4, 1, 5}), in({3, 1}, blo, bhi), 20},
        {in({}), in({2, 3}, blo, bhi), 6},
        {transposed({5, 3}), in({5, 3}, blo, bhi), 1},
        {strided({4, 6}), expanded({1, 6}, {4, 6}, blo, bhi), 4},
        {in({2, 3}), permuted({3, 1, 2}, {1, 2, 0}, blo, bhi), 1},
    };
    for (const Pair& p : pairs) {
      auto op = d.op;
      auto ref = d.ref;
      t.add(d.name, {p.a, p.b}, [op](const std::vector<Tensor>& x) { return op(x[0], x[1]); },
            [ref](const std::vector<NdArray>& x) {
              return naive_map(x, [ref](const std::vector<double>& v) { return ref(v[0], v[1]); });
            },
            sum_tolerance(p.k));
    }
  }
  // One large case per cheap binary op (exercises the parallel CPU loops and multi-block launches).
  t.add("add", {in({1000003}), in({1000003})}, [](const std::vector<Tensor>& x) { return add(x[0], x[1]); },
        [](const std::vector<NdArray>& x) {
          return naive_map(x, [](const std::vector<double>& v) { return v[0] + v[1]; });
        },
        elementwise_tolerance());
  t.add("mul", {in({1000003}), in({1000003})}, [](const std::vector<Tensor>& x) { return mul(x[0], x[1]); },
        [](const std::vector<NdArray>& x) {
          return naive_map(x, [](const std::vector<double>& v) { return v[0] * v[1]; });
        },
        elementwise_tolerance());
}

struct UnaryDef {
  std::string name;
  std::function<Tensor(const Tensor&)> op;
  std::function<double(double)> ref;  ///< the op written out in double, independent of kernels/op_traits.h
  double lo = -1.0, hi = 1.0;
  bool extremes = false;  ///< also at x = -100 and x = +100 (ops whose formulas could overflow there)
};

/// The op-case entry of each op of kernels::UnaryOpList: its public function(s) with a reference
/// formula (several defs where the op has a parameter: pow's exponent, gelu's form). add_unary runs
/// every def on every input layout, and fails to compile while an op of the list has no entry.
template <class Op>
struct UnaryEntry;

namespace op = kernels::op;
template <> struct UnaryEntry<op::Neg> {
  static std::vector<UnaryDef> defs() { return {{"neg", [](const Tensor& x) { return neg(x); }, [](double v) { return -v; }}}; }
};
template <> struct UnaryEntry<op::Exp> {
  static std::vector<UnaryDef> defs() {
    return {{"exp", [](const Tensor& x) { return exp(x); }, [](double v) { return std::exp(v); }}};
  }
};
// log and non-integer powers need positive inputs; [0.5, 2] keeps 1/x and x^(p-1) O(1).
template <> struct UnaryEntry<op::Log> {
  static std::vector<UnaryDef> defs() {
    return {{"log", [](const Tensor& x) { return log(x); }, [](double v) { return std::log(v); }, 0.5, 2.0}};
  }
};
template <> struct UnaryEntry<op::Pow> {
  static std::vector<UnaryDef> defs() {
    return {
        {"pow2", [](const Tensor& x) { return pow(x, 2.0); }, [](double v) { return v * v; }},
        {"pow3", [](const Tensor& x) { return pow(x, 3.0); }, [](double v) { return v * v * v; }, 0.5, 2.0},
        {"pow-1.5", [](const Tensor& x) { return pow(x, -1.5); }, [](double v) { return std::pow(v, -1.5); }, 0.5, 2.0},
        {"pow0.5", [](const Tensor& x) { return pow(x, 0.5); }, [](double v) { return std::sqrt(v); }, 0.5, 2.0},
    };
  }
};
template <> struct UnaryEntry<op::Relu> {
  static std::vector<UnaryDef> defs() {
    return {{"relu", [](const Tensor& x) { return relu(x); }, [](double v) { return v > 0 ? v : 0.0; }}};
  }
};
template <> struct UnaryEntry<op::Sigmoid> {
  static std::vector<UnaryDef> defs() {
    return {{"sigmoid", [](const Tensor& x) { return sigmoid(x); }, [](double v) { return 1.0 / (1.0 + std::exp(-v)); }}};
  }
};
template <> struct UnaryEntry<op::Tanh> {
  static std::vector<UnaryDef> defs() {
    return {{"tanh", [](const Tensor& x) { return tanh(x); }, [](double v) { return std::tanh(v); }}};
  }
};
template <> struct UnaryEntry<op::AddScalar> {
  static std::vector<UnaryDef> defs() {
    return {{"add_scalar", [](const Tensor& x) { return x + 0.75; }, [](double v) { return v + 0.75; }}};
  }
};
template <> struct UnaryEntry<op::MulScalar> {
  static std::vector<UnaryDef> defs() {
    return {{"mul_scalar", [](const Tensor& x) { return x * -1.25; }, [](double v) { return v * -1.25; }},
            {"rdiv_scalar", [](const Tensor& x) { return 2.0 / x; }, [](double v) { return 2.0 / v; }, 0.5, 2.0}};
  }
};
// The activations on [-5, 5] (both tails and the curved middle) and at +-100.
template <> struct UnaryEntry<op::Gelu> {
  static std::vector<UnaryDef> defs() {
    return {{"gelu", [](const Tensor& x) { return gelu(x); },
             [](double v) { return 0.5 * v * std::erfc(-v / std::sqrt(2.0)); }, -5.0, 5.0, true}};
  }
};
template <> struct UnaryEntry<op::GeluTanh> {
  static std::vector<UnaryDef> defs() {
    return {{"gelu_tanh", [](const Tensor& x) { return gelu(x, "tanh"); },
             [](double v) {
               const double u = std::sqrt(2.0 / std::numbers::pi) * (v + 0.044715 * v * v * v);
               return 0.5 * v * (1.0 + std::tanh(u));
             },
             -5.0, 5.0, true}};
  }
};
template <> struct UnaryEntry<op::Silu> {
  static std::vector<UnaryDef> defs() {
    return {{"silu", [](const Tensor& x) { return silu(x); }, [](double v) { return v / (1.0 + std::exp(-v)); }, -5.0,
             5.0, true}};
  }
};
// softplus also across its threshold 20: PyTorch's definition (beta 1) is x itself above it; below, the
// reference uses the form x + log1p(e^-x) for x > 0 (the op computes log1p(e^x)).
template <> struct UnaryEntry<op::Softplus> {
  static std::vector<UnaryDef> defs() {
    const auto ref = [](double v) {
      if (v > 20.0) return v;
      return v > 0 ? v + std::log1p(std::exp(-v)) : std::log1p(std::exp(v));
    };
    return {{"softplus", [](const Tensor& x) { return softplus(x); }, ref, -5.0, 5.0, true},
            {"softplus/threshold", [](const Tensor& x) { return softplus(x); }, ref, 18.0, 22.0}};
  }
};

/// Every def of every op of kernels::UnaryOpList.
std::vector<UnaryDef> unary_defs() {
  std::vector<UnaryDef> defs;
  kernels::for_each_op(kernels::UnaryOpList{}, [&](auto tag) {
    using Op = typename decltype(tag)::type;
    static_assert(requires { UnaryEntry<Op>::defs(); },
                  "an op of kernels::UnaryOpList has no UnaryEntry in tests/harness/op_cases.cpp");
    for (UnaryDef& d : UnaryEntry<Op>::defs()) defs.push_back(std::move(d));
  });
  return defs;
}

const UnaryDef& find_def(const std::vector<UnaryDef>& defs, const std::string& name) {
  const auto it = std::find_if(defs.begin(), defs.end(), [&](const UnaryDef& d) { return d.name == name; });
  EMBER_CHECK(it != defs.end(), "op_cases: no unary def named ", name);
  return *it;
}

void add_unary_case(Table& t, const std::string& name, const UnaryDef& d, const InputSpec& s) {
  t.add(name, {s}, [op = d.op](const std::vector<Tensor>& x) { return op(x[0]); },
        [ref = d.ref](const std::vector<NdArray>& x) {
          return naive_map(x, [ref](const std::vector<double>& v) { return ref(v[0]); });
        },
        elementwise_tolerance());
}

void add_unary(Table& t) {
  const std::vector<UnaryDef> defs = unary_defs();
  for (const UnaryDef& d : defs) {
    for (const InputSpec& s : {in({1}, d.lo, d.hi), in({33}, d.lo, d.hi), in({}, d.lo, d.hi),
                               transposed({4, 7}, d.lo, d.hi), strided({3, 5}, d.lo, d.hi)}) {
      add_unary_case(t, d.name, d, s);
    }
    if (d.extremes) {  // lo == hi: every element exactly -100 or +100
      for (const double v : {-100.0, 100.0}) add_unary_case(t, str_cat(d.name, "@", v), d, in({3}, v, v));
    }
  }
  for (const char* name : {"exp", "relu"}) {  // on 1000003 elements
    const UnaryDef& d = find_def(defs, name);
    add_unary_case(t, d.name, d, in({1000003}, d.lo, d.hi));
  }
}

// ---------------------------------------------------------------- reductions
void add_reductions(Table& t) {
  struct R {
    InputSpec x;
    std::vector<int64_t> dims;  // empty: the all-dims overload
    bool keepdim;
    int64_t k;
  };
  const std::vector<R> rs = {
      {in({1}), {}, false, 1},
      {in({31}), {}, false, 31},
      {in({3, 4, 5}), {}, false, 60},
      {in({}), {}, false, 1},
      {transposed({5, 4}), {}, false, 20},
      {in({3, 4, 5}), {1}, false, 4},
      {in({3, 4, 5}), {0, 2}, false, 15},  // non-adjacent dims
      {in({3, 4, 5}), {2, 0}, true, 15},
      {in({3, 4, 5}), {-1}, true, 5},
      {in({3, 4, 5}), {0, 1}, false, 12},
      {in({}), {0}, false, 1},  // a 0-dim tensor reduced over dim 0 is itself
      {transposed({6, 5}), {0}, false, 6},
      {strided({4, 3}), {1}, true, 3},
      {permuted({2, 3, 4}, {2, 0, 1}), {0, 2}, false, 12},
  };
  for (const bool is_mean : {false, true}) {
    for (const R& r : rs) {
      const std::string name = str_cat(is_mean ? "mean" : "sum", r.dims.empty() ? "" : "/dims",
                                       r.dims.empty() ? "" : shape_str(r.dims), r.keepdim ? "/keepdim" : "");
      const auto dims = r.dims;
      const bool keep = r.keepdim;
      Fn fn = [dims, keep, is_mean](const std::vector<Tensor>& x) {
        if (dims.empty()) return is_mean ? mean(x[0]) : sum(x[0]);
        return is_mean ? mean(x[0], dims, keep) : sum(x[0], dims, keep);
      };
      Naive nv = [dims, keep, is_mean](const std::vector<NdArray>& x) {
        return naive_reduce(x[0], dims, keep, is_mean ? NaiveReduce::Mean : NaiveReduce::Sum);
      };
      t.add(name, {r.x}, fn, nv, sum_tolerance(r.k));
    }
  }
  // Large: positive terms, so the relative tolerance of a same-sign sum applies.
  t.add("sum", {in({1000003}, 0.5, 1.5)}, [](const std::vector<Tensor>& x) { return sum(x[0]); },
        [](const std::vector<NdArray>& x) { return naive_reduce(x[0], {}, false, NaiveReduce::Sum); },
        sum_tolerance(1000003));

  struct M {
    InputSpec x;
    int64_t dim;
    bool keepdim;
  };
  const std::vector<M> ms = {
      {in({3, 4, 5}), 1, false}, {in({3, 4, 5}), 0, true},  {in({3, 4, 5}), -1, false}, {transposed({6, 5}), 0, false},
      {in({1}), 0, false},       {in({33}), 0, true},        {in({}), 0, false},         {strided({4, 3}), 1, false},
  };
  for (const M& m : ms) {
    const int64_t dim = m.dim;
    const bool keep = m.keepdim;
    t.add(str_cat("max/dim", dim, keep ? "/keepdim" : ""), {m.x},
          [dim, keep](const std::vector<Tensor>& x) { return max(x[0], dim, keep); },
          [dim, keep](const std::vector<NdArray>& x) { return naive_reduce(x[0], {dim}, keep, NaiveReduce::Max); },
          elementwise_tolerance());
  }
}

// ---------------------------------------------------------------- matmul, softmax, composites
void add_matmul(Table& t) {
  struct MM {
    InputSpec a, b;
    int64_t k;  // longest dot product in forward or backward
  };
  const std::vector<MM> cases = {
      {in({3, 4}), in({4, 5}), 5},
      {in({1, 1}), in({1, 1}), 1},
      {in({7, 33}), in({33, 3}), 33},
      {transposed({3, 4}), in({4, 5}), 5},
      {in({3, 4}), transposed({4, 5}), 5},
      {transposed({3, 4}), transposed({4, 5}), 5},
      {strided({3, 5}), in({5, 2}), 5},  // unit-stride violation: copied before the GEMM
      {in({2, 3, 4}), in({2, 4, 5}), 5},
      {in({2, 3, 4}), in({4, 5}), 6},  // b broadcast over the batch: its gradient sums 2*3 rows
      {in({2, 3, 4}), transposed({2, 4, 5}), 5},
      {in({2, 3, 4}), expanded({1, 4, 5}, {2, 4, 5}), 6},  // batch stride 0
      {permuted({3, 2, 4}, {1, 0, 2}), in({2, 4, 5}), 5},  // batch stride != m*k
      {in({3, 4}), in({2, 4, 5}), 6},                      // a broadcast over b's batch
      {in({4}), in({4, 5}), 5},                            // vector operands, as torch.matmul
      {in({3, 4}), in({4}), 4},
      {in({4}), in({4}), 4},
      {in({2, 3, 4}), in({4}), 6},
      {in({4}), in({2, 4, 5}), 5},
  };
  for (const MM& m : cases) {
    t.add("matmul", {m.a, m.b}, [](const std::vector<Tensor>& x) { return matmul(x[0], x[1]); },
          [](const std::vector<NdArray>& x) { return naive_matmul(x[0], x[1]); }, sum_tolerance(m.k));
  }
}

void add_softmax(Table& t) {
  struct S {
    InputSpec x;
    int64_t dim;
    int64_t n;
  };
  const std::vector<S> cases = {
      {in({4, 5}), -1, 5},     {in({4, 5}), 0, 4},      {in({2, 3, 4}), 1, 3}, {in({2, 3, 4}), 0, 2},
      {transposed({5, 4}), -1, 4}, {in({1}), 0, 1},     {in({33}, -3.0, 3.0), 0, 33},
  };
  for (const bool lg : {false, true}) {
    for (const S& s : cases) {
      const int64_t dim = s.dim;
      t.add(str_cat(lg ? "log_softmax" : "softmax", "/dim", dim), {s.x},
            [dim, lg](const std::vector<Tensor>& x) { return lg ? log_softmax(x[0], dim) : softmax(x[0], dim); },
            [dim, lg](const std::vector<NdArray>& x) { return naive_softmax(x[0], dim, lg); }, sum_tolerance(s.n));
    }
  }
}

void add_composites(Table& t) {
  // One MLP layer: the weight-gradient GEMM, the bias broadcast and relu's mask in one graph.
  t.add("mlp_layer", {in({4, 6}), in({6, 5}), in({5})},
        [](const std::vector<Tensor>& x) { return relu(matmul(x[0], x[1]) + x[2]); },
        [](const std::vector<NdArray>& x) {
          const NdArray z = naive_map({naive_matmul(x[0], x[1]), x[2]},
                                      [](const std::vector<double>& v) { return v[0] + v[1]; });
          return naive_map({z}, [](const std::vector<double>& v) { return v[0] > 0 ? v[0] : 0.0; });
        },
        sum_tolerance(6));
  // A diamond: x reaches the output along three paths whose gradients the engine must sum.
  t.add("diamond", {in({7})}, [](const std::vector<Tensor>& x) { return x[0] * x[0] + exp(x[0]) * x[0]; },
        [](const std::vector<NdArray>& x) {
          return naive_map(x, [](const std::vector<double>& v) { return v[0] * v[0] + std::exp(v[0]) * v[0]; });
        },
        elementwise_tolerance());
  t.add("log_softmax_of_matmul", {in({3, 4}), in({4, 6})},
        [](const std::vector<Tensor>& x) { return log_softmax(matmul(x[0], x[1]), 1); },
        [](const std::vector<NdArray>& x) { return naive_softmax(naive_matmul(x[0], x[1]), 1, true); },
        sum_tolerance(6));
  // mean over a non-adjacent pair of dims of a product with a broadcast operand.
  t.add("mean_of_broadcast_product", {in({2, 3, 4}), in({3, 1})},
        [](const std::vector<Tensor>& x) { return mean(x[0] * x[1], {0, 2}, true); },
        [](const std::vector<NdArray>& x) {
          const NdArray p = naive_map(x, [](const std::vector<double>& v) { return v[0] * v[1]; });
          return naive_reduce(p, {0, 2}, true, NaiveReduce::Mean);
        },
        sum_tolerance(8));
}

// ---------------------------------------------------------------- layer_norm
/// LayerNorm over the last dim of x [*, n] with weight and bias [n], in double: two-pass mean and
/// biased variance per row.
NdArray naive_layer_norm(const std::vector<NdArray>& x) {
  const NdArray& in = x[0];
  const size_t n = static_cast<size_t>(in.shape.back());
  NdArray out{in.shape, std::vector<double>(in.v.size())};
  for (size_t r = 0; r < in.v.size() / n; ++r) {
    double sum = 0.0, sq = 0.0;
    for (size_t j = 0; j < n; ++j) sum += in.v[r * n + j];
    const double mean = sum / static_cast<double>(n);
    for (size_t j = 0; j < n; ++j) sq += (in.v[r * n + j] - mean) * (in.v[r * n + j] - mean);
    const double rstd = 1.0 / std::sqrt(sq / static_cast<double>(n) + 1e-5);
    for (size_t j = 0; j < n; ++j) out.v[r * n + j] = (in.v[r * n + j] - mean) * rstd * x[1].v[j] + x[2].v[j];
  }
  return out;
}

void add_layer_norm(Table& t) {
  // Odd rows, a row over a warp, a transposed (non-contiguous) input, and rows longer than a CUDA block
  // (no gradcheck there: too many elements). The weight stays in [0.5, 1.5] so no row is scaled to 0.
  struct Case {
    InputSpec x;
    int64_t n, rows;
  };
  const std::vector<Case> cases = {{in({4, 7}), 7, 4}, {in({2, 3, 33}), 33, 6}, {transposed({6, 5}), 5, 6},
                                   {in({3, 300}), 300, 3}};
  for (const Case& c : cases) {
    // f32 vs f64: O(1) outputs after row statistics of n values and weight/bias gradients summed over
    // the rows (sum_tolerance of the longer of the two).
    t.add("layer_norm", {c.x, in({c.n}, 0.5, 1.5), in({c.n}, -0.5, 0.5)},
          [](const std::vector<Tensor>& x) { return layer_norm(x[0], x[1], x[2]); }, naive_layer_norm,
          sum_tolerance(std::max(c.n, c.rows)));
  }
}

// ---------------------------------------------------------------- embedding, cross_entropy options
void add_embedding_and_losses(Table& t) {
  // Repeated indices (row 2 three times); the weight contiguous and as a transposed view (a non-leaf,
  // so its gradient goes through the engine rather than straight into .grad).
  const std::vector<int64_t> idx{2, 0, 2, 4, 2, 1};
  for (const InputSpec& w : {in({5, 3}), transposed({5, 3})}) {
    t.add("embedding", {w},
          [idx](const std::vector<Tensor>& x) {
            return embedding(from_vector(idx, {2, 3}, TensorOptions{DType::i64, x[0].device()}), x[0]);
          },
          [idx](const std::vector<NdArray>& x) {
            NdArray out{{2, 3, 3}, {}};
            for (int64_t r : idx)
              for (int64_t d = 0; d < 3; ++d) out.v.push_back(x[0].v[static_cast<size_t>(r * 3 + d)]);
            return out;
          },
          sum_tolerance(3));
  }
  // cross_entropy with ignore_index and label smoothing, per-row (None) and mean.
  const std::vector<int64_t> tg{1, -100, 3, 0};
  for (const Reduction red : {Reduction::None, Reduction::Mean}) {
    t.add(str_cat("cross_entropy_smooth_ignore/", red == Reduction::None ? "none" : "mean"), {in({4, 5}, -2.0, 2.0)},
          [tg, red](const std::vector<Tensor>& x) {
            const Tensor tt = from_vector(tg, {4}, TensorOptions{DType::i64, x[0].device()});
            return cross_entropy(x[0], tt, CrossEntropyOptions{red, -100, 0.2});
          },
          [tg, red](const std::vector<NdArray>& x) {
            NdArray out{{4}, {}};
            double total = 0;
            for (size_t r = 0; r < 4; ++r) {
              double s = 0, sx = 0;
              for (size_t j = 0; j < 5; ++j) s += std::exp(x[0].v[r * 5 + j]), sx += x[0].v[r * 5 + j];
              const double loss = tg[r] == -100 ? 0.0
                                                : 0.8 * (std::log(s) - x[0].v[r * 5 + static_cast<size_t>(tg[r])]) +
                                                      0.2 * (std::log(s) - sx / 5);
              out.v.push_back(loss);
              total += loss;
            }
            return red == Reduction::None ? out : NdArray{{}, {total / 3}};
          },
          sum_tolerance(5));
  }
}

// ---------------------------------------------------------------- attention
void add_attention(Table& t) {
  // causal_softmax: a row of T keys is a softmax of <= T terms (sum_tolerance(T)); rows of 33 cross a
  // warp; a transposed input takes the contiguous copy; one 1 x 1 matrix (a single unmasked key).
  struct C {
    InputSpec x;
    int64_t n;
  };
  for (const C& c : {C{in({2, 3, 5, 5}, -3.0, 3.0), 5}, C{in({1, 1}), 1}, C{in({33, 33}, -3.0, 3.0), 33},
                     C{transposed({2, 6, 6}, -3.0, 3.0), 6}}) {
    t.add("causal_softmax/scale0.7", {c.x}, [](const std::vector<Tensor>& x) { return causal_softmax(x[0], 0.7); },
          [](const std::vector<NdArray>& x) { return naive_causal_softmax(x[0], 0.7); }, sum_tolerance(c.n));
  }
  // scaled_dot_product_attention: dot products of hd terms, then a softmax and a weighted sum of T
  // terms: sum_tolerance(hd * T) bounds both stages. [B, T, H, hd] bases permuted to [B, H, T, hd]
  // are the layout CausalSelfAttention passes (the fold into one batch copies them).
  for (const bool causal : {true, false}) {
    t.add(str_cat("sdpa/causal", causal), {in({2, 2, 5, 4}), in({2, 2, 5, 4}), in({2, 2, 5, 3})},
          [causal](const std::vector<Tensor>& x) { return scaled_dot_product_attention(x[0], x[1], x[2], causal); },
          [causal](const std::vector<NdArray>& x) { return naive_attention(x[0], x[1], x[2], causal); },
          sum_tolerance(20));
  }
  t.add("sdpa/causal1",
        {permuted({2, 5, 2, 4}, {0, 2, 1, 3}), permuted({2, 5, 2, 4}, {0, 2, 1, 3}),
         permuted({2, 5, 2, 4}, {0, 2, 1, 3})},
        [](const std::vector<Tensor>& x) { return scaled_dot_product_attention(x[0], x[1], x[2], true); },
        [](const std::vector<NdArray>& x) { return naive_attention(x[0], x[1], x[2], true); }, sum_tolerance(20));
  // Keys longer than queries (no mask), 3-D operands.
  t.add("sdpa/causal0", {in({3, 4, 5}), in({3, 6, 5}), in({3, 6, 2})},
        [](const std::vector<Tensor>& x) { return scaled_dot_product_attention(x[0], x[1], x[2], false); },
        [](const std::vector<NdArray>& x) { return naive_attention(x[0], x[1], x[2], false); }, sum_tolerance(30));
}

}  // namespace

const std::vector<OpCase>& op_cases() {
  static const std::vector<OpCase> cases = [] {
    Table t;
    add_binary(t);
    add_unary(t);
    add_reductions(t);
    add_matmul(t);
    add_softmax(t);
    add_composites(t);
    add_layer_norm(t);
    add_embedding_and_losses(t);
    add_attention(t);
    return t.take();
  }();
  return cases;
}

std::vector<Tensor> make_inputs(const OpCase& c, size_t index, DType dtype, Device device, bool requires_grad) {
  std::vector<Tensor> xs;
  for (size_t j = 0; j < c.inputs.size(); ++j) {
    const InputSpec& s = c.inputs[j];
    const uint64_t seed = 0x5EED0000ull + 64 * index + j;
    xs.push_back(random_input(s.shape, seed, s.lo, s.hi, TensorOptions{dtype, device, requires_grad}));
  }
  return xs;
}

Tensor run_case(const OpCase& c, const std::vector<Tensor>& bases) {
  std::vector<Tensor> xs;
  for (size_t j = 0; j < bases.size(); ++j) xs.push_back(c.inputs[j].layout ? c.inputs[j].layout(bases[j]) : bases[j]);
  return c.fn(xs);
}

Tensor run_naive(const OpCase& c, const std::vector<Tensor>& bases) {
  std::vector<NdArray> xs;
  for (size_t j = 0; j < bases.size(); ++j) {
    const Tensor x = c.inputs[j].layout ? c.inputs[j].layout(bases[j].detach()) : bases[j];
    xs.push_back(to_nd(x));
  }
  return from_nd(c.naive(xs));
}

}  // namespace ember::test
